package remote

import (
	"errors"
	"net/url"
)

// redactURL is the URL as it may be shown: in logs, in errors, in df. The
// userinfo goes (it holds a password), and so does the whole query string,
// because that is where presigned URLs (S3, GCS, Azure SAS) and token
// links carry their signatures, and no list of parameter names can be
// trusted to catch them all; the path still tells a person which file it is.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery = "REDACTED"
		c.ForceQuery = false
	}
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// redactURLString is redactURL for a URL that only exists as text, such as
// a redirect target named in a net/http error.
func redactURLString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

// redactError removes credentials from the URL that net/http puts in its
// errors: it strips passwords, but keeps query strings, and the URL may be
// a redirect target the user never saw (a presigned one).
func redactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactURLString(ue.URL)
	}
	return err
}

// Redact is rawURL as it may be shown (see redactURL), for callers that
// name a URL before or without opening it.
func Redact(rawURL string) string { return redactURLString(rawURL) }
