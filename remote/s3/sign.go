package s3

import (
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// emptyPayloadHash is the SHA-256 of an empty body, a GET's.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// signer signs each GET remote sends with SigV4, for remote.Options.Sign:
// remote calls it on every attempt, so a retry gets a signature of its own
// time, and refreshed credentials once the old ones expire.
func signer(creds aws.CredentialsProvider, region string) func(*http.Request) error {
	// S3 signs the path as sent: escapeKey already encoded it once.
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	return func(r *http.Request) error {
		c, err := creds.Retrieve(r.Context())
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCredentials, err)
		}
		r.Header.Set("X-Amz-Content-Sha256", emptyPayloadHash)
		if err := s.SignHTTP(r.Context(), c, r, emptyPayloadHash, "s3", region, time.Now().UTC()); err != nil {
			return fmt.Errorf("SigV4 signing: %w", err)
		}
		return nil
	}
}
