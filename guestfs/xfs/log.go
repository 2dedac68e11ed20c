package xfs

// checkLog is filled in below.
func (f *FS) checkLog() string { return "" }
