package s3

import (
	"context"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// discoveryTimeout bounds the HeadBucket that asks for a bucket's region.
const discoveryTimeout = 30 * time.Second

// discoverRegion asks S3 where bucket is, with one HeadBucket signed for
// us-east-1: S3 names the bucket's region in x-amz-bucket-region whether
// it answers 200, 301 (another region) or 403 (no right to HeadBucket).
// S3-compatible servers mostly name theirs too. When nothing says,
// us-east-1, and the GET's own error will tell what is wrong (a missing
// bucket, refused credentials).
func discoverRegion(ctx context.Context, cfg aws.Config, endpoint *url.URL, pathStyle bool, bucket string) string {
	const fallback = "us-east-1"
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	var region string
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.Region = fallback
		if endpoint != nil {
			o.BaseEndpoint = aws.String(endpoint.String())
		}
		o.UsePathStyle = pathStyle
		o.RetryMaxAttempts = 2
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Deserialize.Add(bucketRegionHeader(&region), middleware.After)
		})
	})
	client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if region == "" {
		return fallback
	}
	return region
}

// bucketRegionHeader reads x-amz-bucket-region from the raw answer, before
// the SDK turns a 301 or 403 into an error without it.
func bucketRegionHeader(dst *string) middleware.DeserializeMiddleware {
	return middleware.DeserializeMiddlewareFunc("ovfmountBucketRegion", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
			if r := resp.Header.Get("X-Amz-Bucket-Region"); r != "" && validRegion(r) {
				*dst = r
			}
		}
		return out, md, err
	})
}

// validRegion accepts what a region name can be, so that a server cannot
// steer the endpoint's host name.
func validRegion(r string) bool {
	if len(r) == 0 || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
