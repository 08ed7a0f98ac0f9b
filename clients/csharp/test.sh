#!/usr/bin/env bash
# Builds the C# SDK with Debian's Mono and runs its tests (NUnit 2.6 from the nunit-console package).
#
#   clients/csharp/test.sh           # unit tests, then end-to-end tests against the real binaries
#   clients/csharp/test.sh --unit    # unit tests only (no Rust binaries needed)
#
# Needs mcs, mono and nunit-console (apt-get install mono-mcs mono-devel nunit-console). The end-to-end tests use
# the Rust binaries in $MOVAN_BIN_DIR; when it is unset, this builds them with cargo into target/debug. Everything
# built goes to target/csharp/. `mcs -langversion:7.2` is the newest C# Debian's Mono accepts, so the sources stay
# in the subset Unity 2021+ and netstandard2.0 compile too (README.md, "Unity compatibility").
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
root=$(cd ../.. && pwd)

unit_only=0
case "${1:-}" in
  --unit) unit_only=1 ;;
  "") ;;
  *) echo "test.sh: unknown argument $1 (use --unit or nothing)" >&2; exit 2 ;;
esac

for tool in mcs mono nunit-console; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test.sh: $tool not found (apt-get install mono-mcs mono-devel nunit-console)" >&2; exit 1; }
done
nunit_dll=$(ls /usr/lib/cli/nunit.framework-2.*/nunit.framework.dll 2>/dev/null | head -1)
[ -n "$nunit_dll" ] || { echo "test.sh: nunit.framework.dll not found under /usr/lib/cli" >&2; exit 1; }

out="$root/target/csharp"
mkdir -p "$out"
mcs_flags=(-langversion:7.2 -warn:4 -warnaserror -nologo)

echo "== Unity package layout (.meta files)"
# Unity imports every file and folder of a package except hidden ones and those ending in '~'; an immutable (git)
# package must ship a .meta with a unique guid for each, or Unity ignores the asset.
missing=0
while IFS= read -r path; do
  if [ ! -f "$path.meta" ]; then echo "test.sh: $path has no $path.meta (python3 \"Tests~/meta.py\" . writes it)" >&2; missing=1; fi
done < <(find . -mindepth 1 \( -name '.*' -o -name '*~' \) -prune -o ! -name '*.meta' -print | sed 's|^\./||')
while IFS= read -r meta; do
  [ -e "${meta%.meta}" ] || { echo "test.sh: $meta has no asset" >&2; missing=1; }
done < <(find . -mindepth 1 \( -name '.*' -o -name '*~' \) -prune -o -name '*.meta' -print | sed 's|^\./||')
dups=$(find . -mindepth 1 \( -name '.*' -o -name '*~' \) -prune -o -name '*.meta' -print0 | xargs -0 cat | grep '^guid:' | sort | uniq -d || true)
[ -z "$dups" ] || { echo "test.sh: duplicate guids: $dups" >&2; missing=1; }
[ "$missing" -eq 0 ] || exit 1
echo "ok"

echo "== build (mcs $(mcs --version | awk '{print $NF}'), C# 7.2)"
mcs "${mcs_flags[@]}" -target:library -r:System.Net.Http -doc:"$out/Movan.Client.xml" -nowarn:1591 \
  -out:"$out/Movan.Client.dll" Runtime/*.cs
# The Unity sample, against stand-ins for the few UnityEngine types it uses.
mcs "${mcs_flags[@]}" -target:library -out:"$out/UnityEngine.dll" Tests~/UnityStubs/*.cs
mcs "${mcs_flags[@]}" -target:library -r:"$out/Movan.Client.dll" -r:"$out/UnityEngine.dll" -r:System.Net.Http \
  -out:"$out/Movan.Client.Samples.QuickMatch.dll" Samples~/QuickMatch/*.cs
mcs "${mcs_flags[@]}" -r:"$out/Movan.Client.dll" -r:System.Net.Http -r:System.Core -out:"$out/movan-bot-cs.exe" Bot~/*.cs
# The tests compile with the sources (not the dll) so they can reach internals.
mcs "${mcs_flags[@]}" -debug -target:library -r:System.Net.Http -r:System.Core -r:"$nunit_dll" \
  -out:"$out/Movan.Client.Tests.dll" Runtime/*.cs Tests~/*.cs Tests~/EndToEnd/*.cs
cp "$nunit_dll" "$out/"
echo "built $out/Movan.Client.dll, movan-bot-cs.exe, the sample and the tests"

export MOVAN_CS_TEST_DATA="$here/Tests~/vectors"
export MOVAN_CS_BOT="$out/movan-bot-cs.exe"
nunit_args=(-nologo -noshadow -xml="$out/TestResult.xml")
if [ "$unit_only" -eq 1 ]; then
  echo "== unit tests"
  nunit_args+=(-exclude:EndToEnd)
else
  if [ -z "${MOVAN_BIN_DIR:-}" ]; then
    echo "== Rust binaries (cargo build)"
    (cd "$root" && cargo build --quiet -p account-server -p sync-server -p movan-client --bins)
    export MOVAN_BIN_DIR="$root/target/debug"
  fi
  for bin in account-server sync-server movan-bot; do
    [ -x "$MOVAN_BIN_DIR/$bin" ] || { echo "test.sh: $MOVAN_BIN_DIR/$bin is missing" >&2; exit 1; }
  done
  echo "== unit and end-to-end tests (binaries from $MOVAN_BIN_DIR)"
fi
(cd "$out" && nunit-console "${nunit_args[@]}" Movan.Client.Tests.dll)
