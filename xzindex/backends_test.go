package xzindex

// backend is an LZMA2 decoder the build has; tests that decode run with
// each, so that the one a build does not use by default is tested too.
type backend struct {
	name string
	f    lzma2Func
}

var backends = []backend{{"go", goLZMA2}}
