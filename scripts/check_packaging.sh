#!/usr/bin/env bash
# What a distribution packager or an air-gapped site does, end to end:
#   1. build the sdist and the wheel without network (no build isolation);
#   2. check the sdist carries the tests, docs, man page and completions;
#   3. install the wheel with `pip install --no-index` into a fresh venv: no dependency comes along;
#   4. run the test suite from the unpacked sdist (no git checkout) against that installed wheel,
#      with the network cut off when this machine can do that (unshare -n);
#   5. check `zomg --version` and the wheel's metadata agree.
# Usage: scripts/check_packaging.sh [PYTHON]   (default python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say() { printf '== %s\n' "$*"; }

say "build tools (the only step that uses the package registry)"
"$python" -m venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install -q build setuptools wheel
"$work/build-venv/bin/python" -m pip download -q -d "$work/wheelhouse" pytest pytest-subprocess hypothesis gunicorn

say "build sdist and wheel offline (--no-isolation)"
cp -r "$root" "$work/src"
rm -rf "$work/src/.git" "$work/src/.venv" "$work/src/.tox" "$work/src/dist" "$work/src/build"
(cd "$work/src" && "$work/build-venv/bin/python" -m build --no-isolation --outdir "$work/dist" . >/dev/null)
sdist=$(ls "$work"/dist/zomg-*.tar.gz)
wheel=$(ls "$work"/dist/zomg-*.whl)
echo "built $(basename "$sdist") $(basename "$wheel")"

say "sdist contents"
tar -tzf "$sdist" > "$work/sdist.txt"
for needed in tests/conftest.py tests/support/__init__.py tests/support/servers.py bench/_repo_root.py \
              docs/zomg.1 docs/cli.md docs/completions/zomg.bash docs/completions/_zomg \
              docs/completions/zomg.fish docs/packaging.md scripts/gen_docs.py setup.cfg tox.ini LICENSE; do
    grep -q "^zomg-[^/]*/$needed\$" "$work/sdist.txt" || { echo "sdist lacks $needed"; exit 1; }
done
echo "sdist carries tests, their support, docs, man page and completions"
# The test support is test code: the wheel ships only the zomg package.
"$python" -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
strays = [n for n in names if not n.startswith(("zomg/", "zomg-"))]; sys.exit(f"the wheel carries {strays}" if strays else 0)' "$wheel"
echo "the wheel carries only the zomg package"

say "offline install of the wheel into a fresh venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-index "$wheel"
extra=$("$work/venv/bin/python" -m pip list --format=freeze --exclude-editable 2>/dev/null \
        | grep -viE '^(zomg|pip|setuptools|wheel)==' || true)
[ -z "$extra" ] || { echo "the wheel pulled in runtime dependencies: $extra"; exit 1; }
[ -f "$work/venv/share/man/man1/zomg.1" ] || { echo "the wheel did not install the man page"; exit 1; }
version=$("$work/venv/bin/zomg" --version)
meta=$("$work/venv/bin/python" -c 'import importlib.metadata as m; print("zomg " + m.version("zomg"))')
[ "$version" = "$meta" ] || { echo "zomg --version says '$version', the wheel's metadata '$meta'"; exit 1; }
echo "installed, no runtime dependencies; $version"

say "test suite from the unpacked sdist against the installed wheel"
"$work/venv/bin/python" -m pip install -q --no-index --find-links "$work/wheelhouse" pytest pytest-subprocess hypothesis gunicorn
mkdir "$work/unpacked" "$work/run"
tar -xzf "$sdist" -C "$work/unpacked"
tree=$(ls -d "$work"/unpacked/zomg-*)
run_tests=(env ZOMG_TEST_INSTALLED=1 PATH="$work/venv/bin:$PATH" "$work/venv/bin/python" -m pytest -q
           -c "$tree/setup.cfg" --rootdir "$tree" "$tree/tests")
cd "$work/run"
if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
    echo "(network cut off: only loopback is up)"
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${run_tests[@]}"
else
    echo "(this machine cannot cut the network off for one process; running with it)"
    "${run_tests[@]}"
fi
