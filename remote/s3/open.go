package s3

import (
	"context"
	"fmt"
	"strings"

	"github.com/ovfmount/ovfmount/remote"
)

// Open opens the object at rawURL (s3://BUCKET/KEY) as a remote.File: its
// bytes are read with signed range GETs through package remote, which
// keeps the block cache, the retries, the read-ahead and the ETag pinning.
// It fails with ErrCredentials when there are no credentials or S3 refuses
// them, ErrNotFound for a missing bucket or key (also
// remote.ErrNotFound), and with remote's errors otherwise. Errors name
// the object as s3://BUCKET/KEY, and what S3 said (an *Error).
func Open(ctx context.Context, rawURL string, opt Options) (*remote.File, error) {
	bucket, key, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if key == "" || strings.HasSuffix(key, "/") {
		return nil, fmt.Errorf("s3: %s names a prefix, not an object", shownURL(bucket, key))
	}
	if opt.Header.Get("Authorization") != "" {
		return nil, errAuthHeader
	}
	t, err := resolve(ctx, &opt, bucket)
	if err != nil {
		return nil, err
	}
	addressing := "virtual-hosted"
	if t.pathStyle {
		addressing = "path-style"
	}
	opt.Log.Debug().Str("url", shownURL(bucket, key)).Str("endpoint", t.endpoint.String()).
		Str("region", t.region).Str("addressing", addressing).Msg("opening S3 object")
	ro := opt.Options
	ro.Header = ro.Header.Clone()
	ro.NetrcFile = ""
	ro.Sign = signer(t.cfg.Credentials, t.region)
	ro.DescribeError = describeError
	ro.Name = shownURL(bucket, key)
	if ro.Connections == 0 {
		ro.Connections = DefaultConnections
	}
	if ro.ReadAhead == 0 {
		ro.ReadAhead = DefaultReadAhead
	}
	return remote.Open(ctx, objectURL(t.endpoint, t.pathStyle, bucket, key), ro)
}
