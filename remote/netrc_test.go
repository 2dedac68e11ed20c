package remote

import (
	"reflect"
	"strings"
	"testing"
)

func TestNetrcLookup(t *testing.T) {
	for _, c := range []struct {
		name, netrc, host string
		login, password   string
		ok                bool
	}{
		{"one line", "machine a.example login u password p", "a.example", "u", "p", true},
		{"lines, tabs, CRLF", "machine a.example\r\n\tlogin u\r\n\tpassword p\r\n", "a.example", "u", "p", true},
		{"second machine", "machine a login u password p\nmachine b login v password w", "b", "v", "w", true},
		{"first match wins", "machine a login u password p\nmachine a login v password w", "a", "u", "p", true},
		{"host case", "machine A.Example login u password p", "a.example", "u", "p", true},
		{"default", "machine a login u password p\ndefault login anon password guest", "z", "anon", "guest", true},
		{"machine beats default before it", "default login anon password guest\nmachine a login u password p", "a", "u", "p", true},
		{"no match", "machine a login u password p", "b", "", "", false},
		{"login only", "machine a login u", "a", "u", "", true},
		{"no credentials", "machine a account x", "a", "", "", false},
		{"comment", "# machine a login evil password evil\nmachine a login u password p # trailing", "a", "u", "p", true},
		{"quoted", `machine a login "u s" password "p \"q\" \\ \t"`, "a", "u s", "p \"q\" \\ \t", true},
		{"macdef skipped", "machine a login u password p\nmacdef init\nmachine b login evil password evil\ncd /\n\nmachine b login v password w", "b", "v", "w", true},
		{"macdef blank line", "macdef m\nmachine b login evil password evil\n  \t \nmachine b login v password w", "b", "v", "w", true},
		{"unknown keywords", "machine a port 21 login u password p", "a", "u", "p", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			entries, err := parseNetrc([]byte(c.netrc))
			if err != nil {
				t.Fatal(err)
			}
			e, ok := netrcLookup(entries, c.host)
			if ok != c.ok || e.login != c.login || e.password != c.password {
				t.Errorf("lookup(%q) = %q %q %v, want %q %q %v", c.host, e.login, e.password, ok, c.login, c.password, c.ok)
			}
		})
	}
}

// Syntax errors name the line, never a token: a token may be a password.
func TestNetrcErrors(t *testing.T) {
	for _, c := range []struct{ netrc, want string }{
		{"login s3cret", "line 1: login before any machine"},
		{"machine a\nlogin u\npassword", "line 3: password without a value"},
		{"machine", "line 1: machine without a value"},
		{"machine a\n login u password \"s3cret", "line 2: unterminated quoted token"},
		{"machine a login u password \"s3cret\\", "line 1: unterminated quoted token"},
	} {
		_, err := parseNetrc([]byte(c.netrc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.netrc, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error shows a token: %v", c.netrc, err)
		}
	}
}

// formatNetrc writes entries back in netrc syntax, every value quoted.
func formatNetrc(entries []netrcEntry) string {
	q := func(s string) string {
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
		return `"` + r.Replace(s) + `"`
	}
	var b strings.Builder
	for _, e := range entries {
		if e.isDefault {
			b.WriteString("default")
		} else {
			b.WriteString("machine " + q(e.machine))
		}
		for _, f := range []struct{ k, v string }{{"login", e.login}, {"password", e.password}, {"account", e.account}} {
			if f.v != "" {
				b.WriteString("\n\t" + f.k + " " + q(f.v))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func FuzzNetrc(f *testing.F) {
	for _, s := range []string{
		"machine a login u password p",
		"default login anon password guest",
		"machine a\n\tlogin \"u s\"\n\tpassword \"p\\\"q\"\nmacdef init\ncd /\n\nmachine b",
		"# comment\nmachine a account x",
		"login u",
		"machine \"unterminated",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseNetrc(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, e := range entries {
			if e.isDefault && e.machine != "" {
				t.Fatalf("default entry with a machine name: %+v", e)
			}
			netrcLookup(entries, e.machine)
		}
		// Written out again, the entries read back the same.
		again, err := parseNetrc([]byte(formatNetrc(entries)))
		if err != nil {
			t.Fatalf("reparse of %q: %v", formatNetrc(entries), err)
		}
		if !reflect.DeepEqual(again, entries) {
			t.Fatalf("%q read back as %+v, was %+v", formatNetrc(entries), again, entries)
		}
	})
}
