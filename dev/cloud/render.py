"""Render config templates with ${NAME} placeholders from the environment.

Usage: render.py SRC:DEST [SRC:DEST ...]
Writes DEST only when its content changes (so the caller can tell which
services need a restart) and prints each DEST it wrote. A placeholder with
no value in the environment is an error, not an empty string.
"""

import os
import string
import sys


def main(pairs):
    for pair in pairs:
        src, dest = pair.split(":", 1)
        with open(src) as f:
            text = string.Template(f.read()).substitute(os.environ)
        try:
            with open(dest) as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".tmp"
        # Configs hold passwords: owner-only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, dest)
        print(dest)


if __name__ == "__main__":
    main(sys.argv[1:])
