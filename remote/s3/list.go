package s3

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MaxListKeys bounds a listing: past it, List fails with ErrTooManyKeys
// rather than hold an unbounded list in memory (a mount of a whole
// bucket of millions of keys is not what ovfmount is for).
const MaxListKeys = 100_000

// Object is one key a listing found.
type Object struct {
	Key          string // the whole key, prefix included
	Size         int64
	ETag         string // as S3 sent it, quoted
	LastModified time.Time
}

// URL is the object's s3:// URL, for Open.
func (o Object) URL(bucket string) string { return shownURL(bucket, o.Key) }

// List lists the objects under a prefix: rawURL is s3://BUCKET/ (the
// whole bucket) or s3://BUCKET/PREFIX/, ending in "/". The listing is
// recursive: every key that starts with the prefix, at any depth, in S3's
// order (by key, as UTF-8 bytes). Keys ending in "/" (the empty "folder"
// objects consoles make) are left out. More than MaxListKeys keys fail
// with ErrTooManyKeys; a missing bucket with ErrNotFound, refused
// credentials with ErrCredentials. The pages are fetched by the SDK's
// client, which retries throttling and 5xx itself.
func List(ctx context.Context, rawURL string, opt Options) ([]Object, error) {
	return list(ctx, rawURL, opt, MaxListKeys)
}

func list(ctx context.Context, rawURL string, opt Options, limit int) ([]Object, error) {
	bucket, prefix, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("s3: %s names an object, not a prefix (a prefix ends in \"/\")", shownURL(bucket, prefix))
	}
	t, err := resolve(ctx, &opt, bucket)
	if err != nil {
		return nil, err
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	var objs []Object
	pages := s3.NewListObjectsV2Paginator(t.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: listing %s: %w", shownURL(bucket, prefix), sdkError(err))
		}
		for _, c := range page.Contents {
			k := aws.ToString(c.Key)
			if strings.HasSuffix(k, "/") {
				continue
			}
			if len(objs) == limit {
				return nil, fmt.Errorf("s3: listing %s: %w: more than %d", shownURL(bucket, prefix), ErrTooManyKeys, limit)
			}
			objs = append(objs, Object{
				Key:          k,
				Size:         aws.ToInt64(c.Size),
				ETag:         aws.ToString(c.ETag),
				LastModified: aws.ToTime(c.LastModified),
			})
		}
	}
	return objs, nil
}
