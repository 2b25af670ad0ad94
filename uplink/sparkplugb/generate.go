// Package sparkplugb is the Go code protoc-gen-go generates from the
// Sparkplug B payload schema, sparkplug_b.proto. Do not edit
// sparkplug_b.pb.go; change nothing in the schema but go_package.
package sparkplugb

// protoc 3.21 (Debian: protobuf-compiler) and
// go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative sparkplug_b.proto
