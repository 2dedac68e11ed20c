//go:build liblzma && cgo

package xzindex

func init() { backends = append(backends, backend{"liblzma", cLZMA2}) }
