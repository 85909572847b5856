"""gunicorn entry point that serves one OpenStack WSGI app.

The apps parse sys.argv with oslo.config, so gunicorn's own arguments must
not be left there: a worker that dies on "unrecognized arguments" is
respawned forever and clients just hang. We replace argv with what the app
should see (PROVISION_WSGI_ARGV, e.g. "--config-file /x/heat.conf") and then
import the app module named by PROVISION_WSGI_APP.
"""

import importlib
import os
import shlex
import sys

sys.argv = [os.environ.get("PROVISION_WSGI_PROG", "provision-wsgi")] + shlex.split(
    os.environ.get("PROVISION_WSGI_ARGV", "")
)

application = importlib.import_module(os.environ["PROVISION_WSGI_APP"]).application
