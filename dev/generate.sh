#!/usr/bin/env bash
# Regenerates every piece of committed generated code, and the descriptor sets the tests read.
#
#   ./dev/generate.sh
#
# Courier's own targets enable InternalImportsByDefault, so their generated code carries access levels on
# its imports (UseAccessLevelOnImports=true; the generator's default is bare imports, for default packages).
# Needs protoc and Debian's grpc-proto (installed when missing). Builds protoc-gen-swift (release, about a
# minute) and protoc-gen-courier into .build-generate/. CI never runs this: it checks instead that the
# committed services code matches what protoc-gen-courier makes from the committed descriptor sets.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

missing=()
for package in protobuf-compiler grpc-proto libprotobuf-dev; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

scratch=.build-generate
echo "== Building protoc-gen-swift and protoc-gen-courier"
swift build -c release --scratch-path "$scratch" --product protoc-gen-swift >/dev/null
swift build -c release --scratch-path "$scratch" --product protoc-gen-courier >/dev/null
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

GRPC_PROTOS=/usr/share/grpc-proto
WKT=/usr/include
descriptors=Tests/CourierCodeGenTests/Descriptors
mkdir -p "$descriptors"

# generate OUT_DIR VISIBILITY INCLUDE FILE...: messages and services (with reflection data), plus a
# descriptor set per file. NAMING=PathToUnderscores names the outputs (and the set) after the whole path,
# for files whose base names clash (grpc/reflection/v1 and v1alpha).
generate() {
    local out=$1 visibility=$2 include=$3 naming=${NAMING:-DropPath}
    shift 3
    mkdir -p "$out"
    protoc -I "$include" -I "$WKT" \
        --plugin=protoc-gen-swift="$bin/protoc-gen-swift" --swift_out="$out" \
        --swift_opt=Visibility="$visibility" --swift_opt=FileNaming="$naming" --swift_opt=UseAccessLevelOnImports=true \
        "$@"
    local file has_service set
    for file in "$@"; do
        has_service=$(grep -c '^service ' "$include/$file" || true)
        [ "$has_service" = 0 ] && continue
        protoc -I "$include" -I "$WKT" \
            --plugin=protoc-gen-courier="$bin/protoc-gen-courier" --courier_out="$out" \
            --courier_opt=Visibility="$visibility" --courier_opt=FileNaming="$naming" \
            --courier_opt=UseAccessLevelOnImports=true --courier_opt=ReflectionData=true \
            "$file"
        set=$(basename "$file" .proto)
        [ "$naming" = PathToUnderscores ] && set=$(echo "${file%.proto}" | tr / _)
        protoc -I "$include" -I "$WKT" --include_imports --include_source_info \
            --descriptor_set_out="$descriptors/$set.pb" "$file"
    done
}

echo "== Generating"
generate Sources/CourierProtobuf/Generated Public dev/protos google/rpc/status.proto google/rpc/error_details.proto
NAMING=PathToUnderscores generate Sources/CourierReflection/Generated Public dev/protos \
    grpc/reflection/v1/reflection.proto grpc/reflection/v1alpha/reflection.proto
generate Sources/CourierHealth/Generated Public "$GRPC_PROTOS" grpc/health/v1/health.proto
generate Examples/Greeter/Sources/GreeterService/Generated Public Examples/Greeter hello.proto
generate Examples/Ping/Sources/PingService/Generated Public Examples/Ping ping.proto
generate Examples/KeyValue/Sources/KeyValueService/Generated Public Examples/KeyValue kv.proto
generate Examples/Interop/Sources/GRPCTestingProtos/Generated Public "$GRPC_PROTOS" \
    grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto \
    grpc/testing/benchmark_service.proto

# The generator's own golden-file inputs, and the messages its golden output compiles against.
protoc -I Tests/CourierCodeGenTests/Protos -I "$WKT" --include_imports --include_source_info \
    --descriptor_set_out="$descriptors/codegen_test.pb" codegen_test.proto
protoc -I Tests/CourierCodeGenTests/Protos -I "$WKT" \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" --swift_out=Tests/CodeGenGoldenCompileTests \
    --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true \
    codegen_test.proto codegen_other.proto

echo "== Refreshing the generator's golden files"
golden() {
    local options=$1 target=$2 tmp
    tmp=$(mktemp -d)
    protoc -I Tests/CourierCodeGenTests/Protos -I "$WKT" \
        --plugin=protoc-gen-courier="$bin/protoc-gen-courier" --courier_out="$tmp" --courier_opt="$options" \
        codegen_test.proto
    mv "$tmp"/*.courier.swift "$target"
    rm -rf "$tmp"
}
golden Visibility=Public,UseAccessLevelOnImports=true,ReflectionData=true \
    Tests/CodeGenGoldenCompileTests/codegen_test.courier.swift
golden Visibility=Internal,Client=false,UseAccessLevelOnImports=false \
    Tests/CourierCodeGenTests/Golden/codegen_test.internal-server-only.swift
golden Visibility=Package,Server=false,FileNaming=PathToUnderscores,UseAccessLevelOnImports=true \
    Tests/CourierCodeGenTests/Golden/codegen_test.package-client-only.swift
golden "Visibility=Public,UseAccessLevelOnImports=true,ProtoPathModuleMappings=$root/Tests/CourierCodeGenTests/Protos/module_mappings.asciipb" \
    Tests/CourierCodeGenTests/Golden/codegen_test.module-mappings.swift
echo "== Done: review 'git diff'."
