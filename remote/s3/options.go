package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ovfmount/ovfmount/remote"
)

// Addressing says where the bucket goes in an object's URL.
type Addressing int

const (
	// AddressingAuto is path-style with a custom endpoint (what MinIO,
	// Ceph, Versity and most S3-compatible servers expect without DNS
	// set up for it), virtual-hosted on AWS.
	AddressingAuto Addressing = iota
	// AddressingPath puts the bucket in the path: https://HOST/BUCKET/KEY.
	AddressingPath
	// AddressingVirtual puts the bucket in the host name:
	// https://BUCKET.HOST/KEY. A bucket name with a dot is still addressed
	// path-style over HTTPS, as no certificate can name it.
	AddressingVirtual
)

// Defaults that differ from remote's. Each S3 answer comes after tens of
// milliseconds and one connection is paced well below a link's speed, so
// a sequential reader needs more requests in flight than remote's
// defaults give, and read-ahead requests of a few blocks rather than 8
// (remote gives each read-ahead request ReadAhead/(Connections/2)
// blocks, at most 8). With answers 20 ms late and paced at 16 MiB/s by a
// proxy, one reader of 128 KiB reads moved at 1.3x one GET of the whole
// object with remote's 4 connections and 16 blocks, 2.2x with 8 and 32,
// 3.7x with 16 and 32, 2.4x with 16 and 64 (runs of 8 blocks again),
// loopback to versitygw on 2 shared cores. S3 serves thousands of GETs a
// second per prefix, and the AWS CLI itself sends 10 at a time, so 16 is
// far from throttling.
const (
	DefaultConnections = 16
	DefaultReadAhead   = 32 // blocks: 32 MiB with remote's default block size, half its memory budget
)

// Options configure Open and List.
type Options struct {
	// Options are remote's, for the GETs of the object's bytes. Sign,
	// DescribeError and Name are set by Open; Header may not carry an
	// Authorization (the request is signed) and NetrcFile is not used.
	// Connections and ReadAhead default to this package's values.
	remote.Options

	// Endpoint is the S3 endpoint's URL, for an S3-compatible server
	// (http://127.0.0.1:7070, https://minio.example.com). When empty, the
	// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL environment variables (or
	// the shared config file's endpoint_url) give it, and otherwise AWS's
	// regional endpoint is used.
	Endpoint string

	// Addressing chooses path-style or virtual-hosted URLs. Default
	// AddressingAuto.
	Addressing Addressing

	// Region signs the requests and picks AWS's endpoint. When empty, the
	// AWS_REGION variable or the profile's region gives it, and otherwise
	// one HeadBucket request asks S3 for the bucket's region (its
	// x-amz-bucket-region header); us-east-1 when that says nothing.
	Region string

	// Profile is the shared config and credentials files' profile to take
	// credentials and region from. When empty, AWS_PROFILE, else
	// "default".
	Profile string
}

// target is where an object's bytes are, and how to sign for them.
type target struct {
	cfg       aws.Config
	client    *s3.Client // for HeadBucket and ListObjectsV2
	endpoint  *url.URL
	pathStyle bool
	region    string
}

// resolve loads the AWS configuration (credential chain, region, endpoint)
// and works out the endpoint, addressing and region for bucket.
func resolve(ctx context.Context, opt *Options, bucket string) (*target, error) {
	var loads []func(*config.LoadOptions) error
	if opt.Profile != "" {
		loads = append(loads, config.WithSharedConfigProfile(opt.Profile))
	}
	if opt.Region != "" {
		loads = append(loads, config.WithRegion(opt.Region))
	}
	loads = append(loads, config.WithHTTPClient(sdkHTTPClient(opt)))
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		// A missing profile, an unparsable shared file: the
		// credentials' settings are wrong.
		return nil, fmt.Errorf("s3: loading the AWS configuration: %w: %w", ErrCredentials, err)
	}
	t := &target{cfg: cfg, region: cfg.Region}

	// The SDK resolves AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and the
	// shared config's endpoint_url when it builds a client.
	endpoint := opt.Endpoint
	if endpoint == "" {
		if be := s3.NewFromConfig(cfg).Options().BaseEndpoint; be != nil {
			endpoint = *be
		}
	}
	custom := endpoint != ""
	if custom {
		if t.endpoint, err = parseEndpoint(endpoint); err != nil {
			return nil, err
		}
	}
	switch opt.Addressing {
	case AddressingAuto:
		t.pathStyle = custom
	case AddressingPath:
		t.pathStyle = true
	case AddressingVirtual:
		t.pathStyle = false
	default:
		return nil, fmt.Errorf("s3: unknown addressing %d", opt.Addressing)
	}

	if err := checkCredentials(ctx, cfg); err != nil {
		return nil, err
	}
	if t.region == "" {
		t.region = discoverRegion(ctx, cfg, t.endpoint, t.pathStyle, bucket)
	}
	if !validRegion(t.region) {
		// It names a host below, and is signed.
		return nil, fmt.Errorf("s3: invalid region %q", printable(t.region, 64))
	}
	if !custom {
		t.endpoint = awsEndpoint(t.region)
	}
	if t.endpoint.Scheme == "https" && !t.pathStyle && strings.Contains(bucket, ".") {
		t.pathStyle = true // no certificate matches BUCKET.WITH.DOTS.HOST
	}
	t.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.Region = t.region
		o.BaseEndpoint = aws.String(t.endpoint.String())
		o.UsePathStyle = t.pathStyle
	})
	return t, nil
}

// checkCredentials gets the credentials once, so that having none at all
// is said at Open, and clearly. The config's provider caches them and
// refreshes them before they expire; the signer asks it again for every
// request.
func checkCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return fmt.Errorf("s3: %w: no credential provider", ErrCredentials)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("s3: %w: none found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a shared credentials file, or run where a role gives them): %w", ErrCredentials, err)
	}
	return nil
}

// sdkHTTPClient is the client of the SDK's own calls (HeadBucket,
// ListObjectsV2): the caller's, or the SDK's default with the caller's
// CAs.
func sdkHTTPClient(opt *Options) config.HTTPClient {
	if opt.Client != nil {
		return opt.Client
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if opt.RootCAs != nil {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = opt.RootCAs
		}
	})
}

// errAuthHeader refuses Options that would send a second authorization.
var errAuthHeader = errors.New("s3: Options.Header carries an Authorization header; S3 requests are signed with the AWS credentials instead")
