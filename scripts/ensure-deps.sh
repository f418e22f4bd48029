#!/usr/bin/env bash
# Installs what building and testing need when it is missing: PostgreSQL's server and libpq's
# headers (Debian packages `postgresql` and `libpq-dev`). Needs root (or sudo) only when
# something is missing.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
{ pkg-config --exists libpq 2>/dev/null || [ -f /usr/include/postgresql/libpq-fe.h ]; } || missing+=(libpq-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's postgresql package starts its own cluster on 5432; ours run elsewhere, so that is harmless.

# deploy/validate.py runs promtool (Debian's `prometheus` package: promtool comes with the server) on
# the alert rules and the dashboard's queries; the client examples (examples/, run by
# ClientExampleTests) need Python's psycopg 3 for Debian's /usr/bin/python3, a JDK with the PostgreSQL
# JDBC driver, and Go with lib/pq, all from Debian's packages (no PyPI, Maven or Go proxy downloads).
extras=()
command -v promtool >/dev/null 2>&1 || extras+=(prometheus)
/usr/bin/python3 -c 'import psycopg' >/dev/null 2>&1 || extras+=(python3-psycopg)
command -v javac >/dev/null 2>&1 || extras+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || extras+=(libpostgresql-jdbc-java)
command -v go >/dev/null 2>&1 || extras+=(golang-go)
[ -d /usr/share/gocode/src/github.com/lib/pq ] || extras+=(golang-github-lib-pq-dev)
# The ops console's browser tests (Tests/ConsoleBrowserTests) and scripts/screenshots drive Debian's
# headless Chromium through its chromedriver (W3C WebDriver); pip fetches the accessibility checker below.
command -v chromium >/dev/null 2>&1 || extras+=(chromium)
command -v chromedriver >/dev/null 2>&1 || extras+=(chromium-driver)
python3 -m pip --version >/dev/null 2>&1 || extras+=(python3-pip)
if [ ${#extras[@]} -gt 0 ]; then
    echo "installing: ${extras[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${extras[@]}" >/dev/null
    # Only promtool is wanted: on a machine run by systemd, do not leave the Prometheus server running.
    if [[ " ${extras[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
fi

# The accessibility check of the browser tests injects axe-core's axe.min.js into each page. It is
# taken from PyPI's axe-selenium-python wheel, which ships it: downloaded and unpacked into a cache,
# never installed (only that one file is used). ConsoleBrowserTests/Accessibility.swift reads it from
# this path (or $FLEXCHARGE_AXE_JS).
axe_version=3.0.0
axe_js=${FLEXCHARGE_AXE_JS:-${XDG_CACHE_HOME:-$HOME/.cache}/flexcharge-outbox/axe-selenium-python-$axe_version/axe.min.js}
if [ ! -s "$axe_js" ]; then
    echo "fetching axe-core (PyPI axe-selenium-python $axe_version)" >&2
    wheel_dir=$(mktemp -d)
    # --python-version: the wheel is pure JavaScript and Python, but declares Python >= 3.12.
    # Not fatal here: without it only the accessibility tour fails, saying how to get it.
    python3 -m pip download -q --no-deps --only-binary :all: --python-version 3.12 -d "$wheel_dir" \
        "axe-selenium-python==$axe_version" || echo "ensure-deps: could not download axe-selenium-python" >&2
    ls "$wheel_dir"/*.whl >/dev/null 2>&1 && python3 - "$wheel_dir" "$axe_js" <<'PY'
import glob, os, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], "*.whl"))[0])
script = wheel.read("axe_selenium_python/node_modules/axe-core/axe.min.js")
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
with open(sys.argv[2] + ".part", "wb") as out:
    out.write(script)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
    rm -rf "$wheel_dir"
fi
