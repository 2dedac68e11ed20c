package s3

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ in, bucket, key string }{
		{"s3://b-1.x/k", "b-1.x", "k"},
		{"s3://bucket/dir/a b%20c?d#e", "bucket", "dir/a b%20c?d#e"},
		{"s3://bucket/", "bucket", ""},
		{"s3://bucket", "bucket", ""},
		{"s3://Legacy_Bucket/p/", "Legacy_Bucket", "p/"},
	} {
		b, k, err := ParseURL(tc.in)
		if err != nil || b != tc.bucket || k != tc.key {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", tc.in, b, k, err, tc.bucket, tc.key)
		}
	}
	for _, in := range []string{"", "s3:/b/k", "https://b/k", "s3:///k", "s3://b@h/k", "s3://b:1/k", "s3://" + strings.Repeat("b", 256) + "/k",
		"s3://b/" + strings.Repeat("k", 1025), "s3://b/\xff"} {
		if b, k, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) = %q, %q; want an error", in, b, k)
		}
	}
}

func TestObjectURL(t *testing.T) {
	ep, _ := url.Parse("https://s3.eu-west-3.amazonaws.com")
	custom, _ := url.Parse("http://127.0.0.1:7070/base/")
	for _, tc := range []struct {
		ep        *url.URL
		pathStyle bool
		want      string
	}{
		{ep, false, "https://bkt.s3.eu-west-3.amazonaws.com/dir/a%20b%2Bc%C3%BC~.ova"},
		{ep, true, "https://s3.eu-west-3.amazonaws.com/bkt/dir/a%20b%2Bc%C3%BC~.ova"},
		{custom, true, "http://127.0.0.1:7070/base/bkt/dir/a%20b%2Bc%C3%BC~.ova"},
	} {
		if got := objectURL(tc.ep, tc.pathStyle, "bkt", "dir/a b+cü~.ova"); got != tc.want {
			t.Errorf("objectURL = %s, want %s", got, tc.want)
		}
	}
	if got := awsEndpoint("cn-north-1").String(); got != "https://s3.cn-north-1.amazonaws.com.cn" {
		t.Errorf("awsEndpoint(cn-north-1) = %s", got)
	}
	for _, bad := range []string{"ftp://h", "http://", "http://user:pw@h", "http://h/?x=1"} {
		if _, err := parseEndpoint(bad); err == nil || strings.Contains(err.Error(), "pw") {
			t.Errorf("parseEndpoint(%q): %v", bad, err)
		}
	}
}

func TestDescribeError(t *testing.T) {
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>` +
		`<Message>The request signature we calculated does not match.</Message>` +
		`<AWSAccessKeyId>AKIAEXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 secret-bits</StringToSign>` +
		`<SignatureProvided>deadbeef</SignatureProvided><RequestId>R1</RequestId></Error>`
	err := describeError(403, nil, []byte(body))
	if !errors.Is(err, ErrCredentials) || errors.Is(err, ErrNotFound) {
		t.Fatalf("%v: want ErrCredentials only", err)
	}
	for _, leak := range []string{"deadbeef", "secret-bits", "AKIAEXAMPLE"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("%q shows %q", err, leak)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != "SignatureDoesNotMatch" || e.RequestID != "R1" || e.Status != 403 {
		t.Errorf("%+v", e)
	}

	err = describeError(400, nil, []byte(`<Error><Code>AuthorizationHeaderMalformed</Code><Message>wrong region</Message><Region>eu-west-3</Region></Error>`))
	if !strings.Contains(err.Error(), "region eu-west-3") {
		t.Errorf("%q does not name the bucket's region", err)
	}
	if err := describeError(404, nil, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("a bodiless 404: %v", err)
	}
	if err := describeError(500, nil, []byte("<html>oops</html>")); err != nil {
		t.Errorf("an HTML error page: %v, want nil", err)
	}
	err = describeError(503, nil, []byte("<Error><Code>SlowDown</Code><Message>a\u202ered "+strings.Repeat("x", 400)+"</Message></Error>"))
	if s := err.Error(); strings.Contains(s, "\u202e") || len(s) > 400 {
		t.Errorf("a hostile message is shown as %q", s)
	}
}

// The region comes from HeadBucket's x-amz-bucket-region, whatever the
// status, and is checked before it can name a host.
func TestDiscoverRegion(t *testing.T) {
	for _, tc := range []struct {
		status int
		header string
		want   string
	}{
		{200, "eu-west-3", "eu-west-3"},
		{301, "ap-southeast-2", "ap-southeast-2"},
		{403, "us-west-2", "us-west-2"},
		{404, "", "us-east-1"},
		{200, "evil.example.com/", "us-east-1"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodHead || r.URL.Path != "/bkt" || r.Header.Get("Authorization") == "" {
				t.Errorf("%s %s, Authorization %q: want a signed HEAD /bkt", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			}
			if tc.header != "" {
				w.Header().Set("X-Amz-Bucket-Region", tc.header)
			}
			w.WriteHeader(tc.status)
		}))
		ep, _ := url.Parse(srv.URL)
		cfg := aws.Config{Credentials: credentials.NewStaticCredentialsProvider("AKIA", "secret", "")}
		if got := discoverRegion(context.Background(), cfg, ep, true, "bkt"); got != tc.want {
			t.Errorf("HTTP %d with region %q: %q, want %q", tc.status, tc.header, got, tc.want)
		}
		srv.Close()
	}
}
