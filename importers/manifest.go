package importers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/ovfmount/ovfmount/ova"
	"github.com/ovfmount/ovfmount/ova/manifest"
)

var (
	// canonicalLine is DSP0243's manifest line: ALG(name)= hex, with one
	// blank, after "=" only.
	canonicalLine = regexp.MustCompile(`^[A-Za-z0-9-]+\(.+\)= [0-9a-fA-F]+$`)
	// v2vLine is virt-v2v 2.13.3's (input/OVA.ml), with its \r? kept.
	v2vLine = regexp.MustCompile(`^(SHA1|SHA256)\s*\((.*)\)\s*= ([0-9a-fA-F]+)\r?$`)
)

// readBounded reads a member of at most max bytes; false when it is
// larger or unreadable (package manifest then reports why).
func readBounded(m *ova.Member, max int64) ([]byte, bool) {
	if m.Size > max {
		return nil, false
	}
	buf := make([]byte, m.Size)
	if _, err := m.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, false
	}
	return buf, true
}

// algorithmOf normalises a manifest line's algorithm token: SHA1, SHA256,
// SHA512 or MD5 however spelled (SHA-256, sha256, SHA2-256), or false.
func algorithmOf(tok string) (manifest.Algorithm, bool) {
	if a, ok := manifest.ParseAlgorithm(tok); ok {
		return a, true
	}
	u := strings.ToUpper(tok)
	if rest, ok := strings.CutPrefix(u, "SHA2-"); ok && (rest == "256" || rest == "512") {
		return manifest.Algorithm("SHA" + rest), true
	}
	return "", false
}

// lineGroup counts the lines one kind of breach concerns, keeping the
// first (a hostile manifest's million lines cost a counter, not a list).
type lineGroup struct {
	count, firstLine int
	first            string
}

func (g *lineGroup) add(n int, line string) {
	if g.count == 0 {
		g.first, g.firstLine = line, n
	}
	g.count++
}

func (g *lineGroup) where() string {
	if g.count > 1 {
		return fmt.Sprintf("%d lines, the first line %d", g.count, g.firstLine)
	}
	return fmt.Sprintf("line %d", g.firstLine)
}

// manifest checks the manifest's lines against each importer's grammar
// and algorithms.
func (c *checker) manifest() {
	m := c.p.Manifest
	if m == nil {
		return
	}
	data, ok := readBounded(m, manifest.MaxManifestSize)
	if !ok {
		return
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	spelling := map[string]*lineGroup{} // as written, for a known algorithm
	unknown := map[string]*lineGroup{}  // algorithms no importer checks
	algs := map[manifest.Algorithm]*lineGroup{}
	var nonCanonical, blankBefore, notV2V lineGroup
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimRight(raw, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		open := strings.IndexByte(line, '(')
		tok := ""
		if open > 0 {
			tok = strings.TrimSpace(line[:open])
		}
		alg, known := algorithmOf(tok)
		switch {
		case tok == "":
		case !known:
			group(unknown, tok, maxTokens).add(n, line)
		default:
			if tok != string(alg) {
				group(spelling, tok, maxTokens).add(n, line)
			}
			if algs[alg] == nil {
				algs[alg] = &lineGroup{}
			}
			algs[alg].add(n, line)
		}
		if why := deviation(raw); why == blankBeforeParen {
			blankBefore.add(n, why+": "+snippet(line))
		} else if why != "" {
			nonCanonical.add(n, why+": "+snippet(line))
		}
		if (tok == "SHA1" || tok == "SHA256") && !v2vLine.MatchString(raw) {
			notV2V.add(n, line)
		}
	}
	name := m.Name
	for _, tok := range sortedKeys(spelling) {
		g := spelling[tok]
		alg, _ := algorithmOf(tok)
		b := breach{rule: "manifest-spelling", subject: name,
			message: fmt.Sprintf("the algorithm is written %q (%s), not %s", tok, g.where(), alg),
			fix:     fmt.Sprintf("rewrite the lines as %s(NAME)= HEX (sed -i 's/^%s *(/%s(/' %s)", alg, regexp.QuoteMeta(tok), alg, path.Base(name))}
		if !strings.HasPrefix(strings.ToUpper(tok), "SHA2-") {
			// Only OpenSSL 3's SHA2-NNN is known to fail on vSphere.
			others := b
			others.only = []Target{Spec, VirtualBox, VirtV2V, OVirt}
			c.add(others)
			b.only, b.sev, b.source = []Target{VSphere}, Warn, srcVSSpell
		}
		c.add(b)
	}
	for _, tok := range sortedKeys(unknown) {
		c.add(breach{rule: "manifest-algorithm", subject: name, only: []Target{Spec, VirtualBox, VirtV2V, OVirt},
			message: fmt.Sprintf("the algorithm %q (%s) is not one OVF importers check", tok, unknown[tok].where()),
			fix:     "regenerate the manifest with SHA256 (or SHA1 for old vSphere): sha256sum each file into SHA256(NAME)= HEX lines"})
	}
	c.algorithms(name, algs)
	if blankBefore.count > 0 {
		c.add(breach{rule: "manifest-syntax", subject: name, only: []Target{Spec, VSphere},
			message: fmt.Sprintf("%s not in the form ALG(name)= hex (%s)", blankBefore.where(), blankBefore.first),
			fix:     "rewrite each line as ALG(NAME)= HEX (openssl dgst -sha256 writes it; sha256sum --tag does not)"})
	}
	if nonCanonical.count > 0 {
		c.add(breach{rule: "manifest-syntax", subject: name, only: []Target{Spec},
			message: fmt.Sprintf("%s not in the form ALG(name)= hex (%s)", nonCanonical.where(), nonCanonical.first),
			fix:     "rewrite each line as ALG(NAME)= HEX: no blank before \"(\" or \"=\", one after \"=\""})
		c.add(breach{rule: "manifest-syntax", subject: name, only: []Target{VSphere}, sev: Warn, source: srcVSUnconf,
			message: fmt.Sprintf("%s not in the form ALG(name)= hex (%s)", nonCanonical.where(), nonCanonical.first),
			fix:     "rewrite each line as ALG(NAME)= HEX: no blank before \"(\" or \"=\", one after \"=\""})
	}
	if notV2V.count > 0 {
		c.add(breach{rule: "manifest-syntax", subject: name, only: []Target{VirtV2V, OVirt},
			message: fmt.Sprintf("virt-v2v cannot parse %s, so it checks no digest there: %s", notV2V.where(), snippet(notV2V.first)),
			fix:     "write one blank after \"=\" and nothing after the digest: ALG(NAME)= HEX"})
	}
}

// blankBeforeParen is the deviation sha256sum --tag writes, which vCenter
// refuses.
const blankBeforeParen = "a blank before \"(\""

// deviation says how a manifest line departs from DSP0243's form, or ""
// when it does not.
func deviation(raw string) string {
	// A CR before the LF is left alone: whether DSP0243's ABNF allows
	// CRLF was not confirmed, and every importer here reads it.
	line := strings.TrimRight(raw, "\r")
	var why []string
	if !canonicalLine.MatchString(line) {
		open := strings.IndexByte(line, '(')
		closeAt := strings.LastIndexByte(line, ')')
		switch {
		case open < 0 || closeAt < open:
			why = append(why, "no ALG(name) part")
		case strings.HasSuffix(line[:open], " ") || strings.HasSuffix(line[:open], "\t"):
			why = append(why, blankBeforeParen)
		case !strings.HasPrefix(line[closeAt+1:], "= ") || strings.HasPrefix(line[closeAt+1:], "=  "):
			why = append(why, "not exactly \")= \" after the name")
		default:
			why = append(why, "a digest that is not hexadecimal, or text after it")
		}
	}
	return strings.Join(why, ", ")
}

// algorithms reports the well-spelled algorithms an importer does not
// check.
func (c *checker) algorithms(name string, algs map[manifest.Algorithm]*lineGroup) {
	for _, alg := range []manifest.Algorithm{manifest.MD5, manifest.SHA1, manifest.SHA256, manifest.SHA512} {
		g := algs[alg]
		if g == nil {
			continue
		}
		b := breach{rule: "manifest-algorithm", subject: name}
		switch alg {
		case manifest.MD5:
			b.only = []Target{Spec, VirtV2V, OVirt}
			b.message = fmt.Sprintf("MD5 digests (%s): virt-v2v checks only SHA1 and SHA256, and DSP0243 names no MD5", g.where())
			b.fix = "regenerate the manifest with SHA256"
		case manifest.SHA1:
			if c.oldVSphere() {
				continue // what releases before 6.5 want
			}
			b.only = []Target{VSphere}
			b.message = fmt.Sprintf("SHA1 digests (%s): newer vCenter releases refuse SHA1 manifests", g.where())
			b.fix = "regenerate the manifest with SHA256 (ovftool --shaAlgorithm=SHA256)"
		case manifest.SHA256, manifest.SHA512:
			if c.oldVSphere() {
				c.add(breach{rule: "manifest-algorithm", subject: name, only: []Target{VSphere}, sev: Warn, source: srcVSOldSHA2,
					message: fmt.Sprintf("%s digests (%s): the vSphere %s C# client takes SHA1 manifests only", alg, g.where(), c.opts.VSphereVersion),
					fix:     "deploy with the Web client or ovftool, or regenerate the manifest with SHA1 (ovftool --shaAlgorithm=SHA1)"})
			}
			if alg == manifest.SHA256 {
				continue
			}
			b.only = []Target{VirtV2V, OVirt}
			b.message = fmt.Sprintf("SHA512 digests (%s): virt-v2v checks only SHA1 and SHA256, so these files go unchecked", g.where())
			b.fix = "regenerate the manifest with SHA256"
		}
		c.add(b)
	}
}

// maxTokens bounds the distinct algorithm names reported; the rest of a
// hostile manifest's inventions share one group.
const maxTokens = 10

func group(m map[string]*lineGroup, k string, max int) *lineGroup {
	if m[k] == nil {
		if len(m) >= max {
			k = "(other names)"
			if m[k] == nil {
				m[k] = &lineGroup{}
			}
			return m[k]
		}
		m[k] = &lineGroup{}
	}
	return m[k]
}

func sortedKeys(m map[string]*lineGroup) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// snippet quotes a line, cut to a readable length.
func snippet(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// cert checks the certificate file's form: a signature line naming the
// package's manifest, then a PEM certificate.
func (c *checker) cert() {
	if c.p.Cert == nil {
		c.orphanCert()
		return
	}
	m := c.p.Cert
	if m.Size > manifest.MaxCertSize {
		c.add(breach{rule: "cert-format", subject: m.Name, message: fmt.Sprintf("the certificate file is %d bytes, more than any certificate file holds", m.Size),
			fix: "re-sign the package: ovftool --privateKey=KEY.pem SOURCE TARGET"})
		return
	}
	cert, err := manifest.ParseCert(m.Open())
	if err != nil {
		c.add(breach{rule: "cert-format", subject: m.Name, message: "the certificate file cannot be read: " + err.Error(),
			fix: "re-sign the package: ovftool --privateKey=KEY.pem SOURCE TARGET (or openssl dgst -sign, then append the PEM certificate)"})
		return
	}
	if c.p.Manifest != nil && !strings.EqualFold(path.Base(cert.ManifestName), path.Base(c.p.Manifest.Name)) {
		c.add(breach{rule: "cert-format", subject: m.Name,
			message: fmt.Sprintf("the signature line names %q, but the package's manifest is %s", cert.ManifestName, c.p.Manifest.Name),
			fix:     "re-sign the package's own manifest"})
	}
}

// orphanCert reports a certificate named after the descriptor that the
// package could not pair with a manifest.
func (c *checker) orphanCert() {
	d := c.p.Descriptor
	if d == nil {
		return
	}
	want := strings.TrimSuffix(d.Member.Name, path.Ext(d.Member.Name)) + ".cert"
	for _, m := range c.p.Foreign {
		if strings.EqualFold(m.Name, want) {
			c.add(breach{rule: "cert-format", subject: m.Name,
				message: "the certificate has no manifest named after the descriptor to sign",
				fix:     "add the manifest (" + strings.TrimSuffix(want, ".cert") + ".mf) and re-sign it"})
		}
	}
}
