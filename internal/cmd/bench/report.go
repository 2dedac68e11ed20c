package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
)

// report collects rows and prints them as one table at the end, so that
// all figures of a run sit side by side.
type report struct {
	rows []row
}

type row struct {
	group, what, value, ratio string
}

func (r *report) add(group, what, value, ratio string) {
	r.rows = append(r.rows, row{group, what, value, ratio})
	fmt.Printf("  %-58s %14s  %s\n", what, value, ratio)
}

func (r *report) print() {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "benchmark\tmeasurement\tvalue\tratio")
	fmt.Fprintln(w, "---------\t-----------\t-----\t-----")
	for _, x := range r.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", x.group, x.what, x.value, x.ratio)
	}
	w.Flush()
}

func mbps(bytes int64, secs float64) string {
	if secs <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MB/s", float64(bytes)/secs/1e6)
}

func ratio(a, b float64, label string) string {
	if b <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx %s", a/b, label)
}

func heading(s string) {
	fmt.Println(s)
	fmt.Println(strings.Repeat("-", len(s)))
}
