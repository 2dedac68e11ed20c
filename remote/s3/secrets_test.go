package s3

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovfmount/ovfmount/remote"
)

// Neither the logs nor the errors of failing and retried requests ever
// hold the secret, a signature or the Authorization header; S3's own
// words are shown instead.
func TestSecretsNeverShown(t *testing.T) {
	s, p, data := startProxied(t, 1<<20)
	var logs logBuffer
	var shown []string
	opt := testOptions(p.URL)
	opt.Log = logs.logger()
	opt.ReadAhead = -1

	// Retried failures are logged: SlowDown, a dropped body, a stall.
	opt.RequestTimeout = 300 * time.Millisecond
	p.setPlan(func(n int64) fault {
		switch n {
		case 1:
			return fault{slowDown: true}
		case 3:
			return fault{dropAfter: 1000}
		case 4:
			return fault{stallAfter: 1000}
		}
		return fault{}
	})
	f := mustOpen(t, "s3://"+testBucket+"/faults.ova", opt)
	readCheck(t, f, data, 4*remote.MinBlockSize, remote.MinBlockSize)
	if !strings.Contains(logs.String(), "SlowDown") {
		t.Fatalf("nothing was logged of the retries:\n%s", logs.String())
	}
	shown = append(shown, f.URL())
	f.Close()

	// Refused credentials, at Open and in a listing.
	p.setPlan(nil)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-"+s.Secret)
	if _, err := Open(context.Background(), "s3://"+testBucket+"/faults.ova", opt); err != nil {
		shown = append(shown, err.Error())
	}
	if _, err := List(context.Background(), "s3://"+testBucket+"/", opt); err != nil {
		shown = append(shown, err.Error())
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.Secret)

	// A replaced object, logged as an error.
	f = mustOpen(t, "s3://"+testBucket+"/faults.ova", opt)
	put(t, s, "faults.ova", testData(1<<20, 99))
	if _, err := f.ReadAt(make([]byte, 10), 9*remote.MinBlockSize); err != nil {
		shown = append(shown, err.Error())
	}
	if len(shown) != 4 {
		t.Fatalf("%d of the 4 failures happened: %q", len(shown), shown)
	}

	all := logs.String() + "\n" + strings.Join(shown, "\n")
	for _, secret := range []string{s.Secret, "not-" + s.Secret, "Signature=", "AWS4-HMAC-SHA256", "Credential=", "X-Amz-Signature"} {
		if strings.Contains(all, secret) {
			t.Errorf("logs or errors hold %q:\n%s", secret, all)
		}
	}
	for _, want := range []string{"SignatureDoesNotMatch", "s3://" + testBucket + "/faults.ova", "changed"} {
		if !strings.Contains(all, want) {
			t.Errorf("logs and errors never say %q:\n%s", want, all)
		}
	}
}
