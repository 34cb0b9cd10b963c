module imageapid

go 1.26.8

require (
	github.com/mattn/go-tflite v1.0.1
	gocv.io/x/gocv v0.31.0
)

require github.com/mattn/go-pointer v0.0.0-20190911064623-a0a44394634f // indirect
