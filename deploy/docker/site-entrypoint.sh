#!/bin/sh
# The site container's entry point: `medsilo site start` on the mounted kit and data, through
# the hospital's forward proxy when the container's environment names one. `--proxy` (not the
# bare variable) so that the site's own loopback Runtime API is never sent to the proxy and
# the proxy URL is checked before anything starts (medsilo.deploy.site_proxy).
set -eu
proxy="${HTTPS_PROXY:-${https_proxy:-}}"
if [ -n "$proxy" ]; then
  exec medsilo site start /srv/medsilo/kit --data /srv/medsilo/data --proxy "$proxy" "$@"
fi
unset HTTPS_PROXY https_proxy  # set but empty (compose's "no proxy"): nothing to pass on
exec medsilo site start /srv/medsilo/kit --data /srv/medsilo/data "$@"
