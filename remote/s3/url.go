package s3

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/ovfmount/ovfmount/remote"
)

// maxKeyLen is S3's limit on a key, in bytes.
const maxKeyLen = 1024

// ParseURL splits an s3://BUCKET/KEY URL. The key is taken literally, as
// the AWS CLI takes it: no percent-decoding, and '?' or '#' are part of it.
// The key is empty for s3://BUCKET and s3://BUCKET/, and ends in "/" for a
// prefix.
func ParseURL(s string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("s3: %q is not an s3://BUCKET/KEY URL", shorten(s))
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return "", "", fmt.Errorf("s3: %q: %w", shorten(s), err)
	}
	if !utf8.ValidString(key) {
		return "", "", fmt.Errorf("s3: %q: the key is not valid UTF-8", shorten(s))
	}
	if len(key) > maxKeyLen {
		return "", "", fmt.Errorf("s3: %q: the key is %d bytes long, S3's limit is %d", shorten(s), len(key), maxKeyLen)
	}
	return bucket, key, nil
}

// checkBucket accepts the bucket names S3 has ever allowed (the legacy
// ones of us-east-1 have capitals and underscores), and nothing that could
// change a URL's host or path.
func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("no bucket name")
	}
	if len(b) > 255 {
		return fmt.Errorf("bucket name longer than 255 characters")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("bucket name %q has a character other than letters, digits, '.', '-' and '_'", b)
		}
	}
	return nil
}

// shorten keeps a URL quoted in an error readable.
func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// escapeKey is the key as S3 wants it in a path, and as SigV4 signs it:
// every byte but the unreserved ones and '/' percent-encoded.
func escapeKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// objectURL is the HTTP(S) URL of an object at endpoint: the bucket in
// the path (path-style) or in the host name (virtual-hosted).
func objectURL(endpoint *url.URL, pathStyle bool, bucket, key string) string {
	u := *endpoint
	base := strings.TrimSuffix(u.EscapedPath(), "/")
	if pathStyle {
		base += "/" + escapeKey(bucket)
	} else {
		u.Host = bucket + "." + u.Host
	}
	return u.Scheme + "://" + u.Host + base + "/" + escapeKey(key)
}

// shownURL is how an object is named in logs and errors.
func shownURL(bucket, key string) string { return "s3://" + bucket + "/" + key }

// parseEndpoint checks an endpoint URL: http or https, a host, no
// credentials, query or fragment.
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("s3: invalid endpoint URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("s3: endpoint %s is not an http or https URL", remote.Redact(s))
	case u.Host == "":
		return nil, fmt.Errorf("s3: endpoint %s has no host", remote.Redact(s))
	case u.User != nil:
		return nil, fmt.Errorf("s3: endpoint %s holds credentials; give them as AWS credentials instead", remote.Redact(s))
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("s3: endpoint %s has a query or fragment", remote.Redact(s))
	}
	return u, nil
}

// awsEndpoint is AWS's regional S3 endpoint.
func awsEndpoint(region string) *url.URL {
	domain := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return &url.URL{Scheme: "https", Host: "s3." + region + "." + domain}
}
