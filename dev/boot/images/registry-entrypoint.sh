#!/bin/sh
# The entry point of the test image `registry:2.8.3` (dev/boot): called as the
# distribution project's image is, with a config file, a registry subcommand,
# or a program to run.
set -e
case ${1:-} in
    *.yaml | *.yml) set -- registry serve "$@" ;;
    serve | garbage-collect | help | -*) set -- registry "$@" ;;
    "") set -- registry serve /etc/docker/registry/config.yml ;;
esac
exec "$@"
