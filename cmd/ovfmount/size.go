package main

import "fmt"

// formatBytes is how every command shows a size: binary units (KiB, MiB,
// GiB), as df -h, ls -lh and qemu-img info do, so that info's capacities
// and verify's progress read alike.
func formatBytes(n int64) string {
	if n < 0 {
		return "unknown"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
