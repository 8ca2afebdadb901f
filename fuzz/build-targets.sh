#!/usr/bin/env bash
# Builds the fuzz targets with swiftc so that quorum's own code is instrumented for coverage
# (SwiftPM's --sanitize instruments only the fuzz target's own module). swift-crypto is taken
# from an ordinary SwiftPM build in .build-fuzz (BoringSSL itself is not instrumented).
set -euo pipefail
cd "$(dirname "$0")"
root=..
out=.build-fuzz/targets
mkdir -p "$out"
flags=(-O -sanitize=fuzzer,address -parse-as-library)

strip_imports() { sed -E '/^import (QuorumCore|QuorumSecurity|QuorumControl|QuorumNode)$/d' "$1" > "$out/$2.swift"; }

strip_imports Sources/FuzzWire/Fuzz.swift FuzzWire
swiftc "${flags[@]}" -module-name FuzzWire "$root"/Sources/QuorumCore/*.swift "$out/FuzzWire.swift" -o "$out/FuzzWire"

# QuorumControl takes the rule for names from QuorumCore: one module here.
for f in "$root"/Sources/QuorumControl/*.swift; do strip_imports "$f" "Control-$(basename "$f" .swift)"; done
strip_imports Sources/FuzzControl/Fuzz.swift FuzzControl
swiftc "${flags[@]}" -module-name FuzzControl "$root"/Sources/QuorumCore/*.swift "$out"/Control-*.swift "$out/FuzzControl.swift" -o "$out/FuzzControl"

# swift-crypto, built once by SwiftPM (uninstrumented), linked into the keyed targets.
# Its object files are globbed below, so objects left from an earlier swift-crypto version are
# removed first (they would be linked in too).
b=.build-fuzz/release
crypto_dirs=("$b"/Crypto.build "$b"/CryptoBoringWrapper.build "$b"/CCryptoBoringSSL.build "$b"/CCryptoBoringSSLShims.build
             "$b"/CXKCP.build "$b"/CXKCPShims.build)
find "${crypto_dirs[@]}" -name '*.o' -delete 2>/dev/null || true
swift build -c release --package-path "$root" --scratch-path "$PWD/.build-fuzz" --target Crypto >&2
swift build -c release --package-path "$root" --scratch-path "$PWD/.build-fuzz" --target ArgumentParser >&2
crypto_objects=$(find "${crypto_dirs[@]}" -name '*.o' 2>/dev/null)
modulemaps=(-Xcc -fmodule-map-file="$root/.build/checkouts/swift-crypto/Sources/CCryptoBoringSSL/include/module.modulemap"
            -Xcc -fmodule-map-file="$root/.build/checkouts/swift-crypto/Sources/CCryptoBoringSSLShims/include/module.modulemap")
# QuorumCore and QuorumSecurity become one module here, so their imports of each other go.
for f in "$root"/Sources/QuorumSecurity/*.swift; do strip_imports "$f" "Security-$(basename "$f" .swift)"; done
for t in FuzzSealed FuzzKeyFile; do
    strip_imports Sources/$t/Fuzz.swift $t
    # shellcheck disable=SC2086
    swiftc "${flags[@]}" -module-name $t -I "$b/Modules" "${modulemaps[@]}" \
        "$root"/Sources/QuorumCore/*.swift "$out"/Security-*.swift "$out/$t.swift" \
        $crypto_objects -lstdc++ -o "$out/$t"
done
# The settings parser (quorumd's command line and --config files), with ArgumentParser linked in
# (and the control socket's default path, from QuorumControl's locator).
for f in "$root"/Sources/QuorumNode/Settings/*.swift; do strip_imports "$f" "Settings-$(basename "$f" .swift)"; done
strip_imports Sources/FuzzConfig/Fuzz.swift FuzzConfig
parser_objects=$(find "$b/ArgumentParser.build" "$b/ArgumentParserToolInfo.build" -name '*.o')
# shellcheck disable=SC2086
swiftc "${flags[@]}" -module-name FuzzConfig -I "$b/Modules" \
    "$root"/Sources/QuorumCore/*.swift "$out"/Control-ControlSocketLocator.swift "$out"/Settings-*.swift "$out/FuzzConfig.swift" \
    $parser_objects -o "$out/FuzzConfig"
echo "$out"
