# Source this to run go commands by hand with the project's TFLite library:
#   . scripts/env.sh && go test ./estimators/...
_imageapid_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_imageapid_arch=linux_$(go env GOARCH)
export CGO_CFLAGS="-I$_imageapid_root/third_party/tflite/include"
export CGO_LDFLAGS="-L$_imageapid_root/third_party/tflite/$_imageapid_arch -Wl,-rpath,$_imageapid_root/third_party/tflite/$_imageapid_arch"
unset _imageapid_root _imageapid_arch
