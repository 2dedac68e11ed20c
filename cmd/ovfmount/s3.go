package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/ovfmount/ovfmount/remote"
	"github.com/ovfmount/ovfmount/remote/s3"
)

// s3Flags configure reading archives from S3 and S3-compatible stores.
// Credentials come from where the AWS CLI finds them (environment, shared
// config and credentials files, web identity, container and instance
// metadata), never from a flag.
type s3Flags struct {
	endpoint, region, profile, addressing string
}

func (f *s3Flags) flags(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "s3-endpoint", "", "for s3:// URLs: the endpoint of an S3-compatible store, e.g. http://127.0.0.1:7070 (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS)")
	fs.StringVar(&f.region, "s3-region", "", "for s3:// URLs: the region to sign for (default: $AWS_REGION, the profile's region, else asked of the bucket)")
	fs.StringVar(&f.profile, "s3-profile", "", "for s3:// URLs: the AWS profile whose credentials and region to use (default: $AWS_PROFILE, else default)")
	fs.StringVar(&f.addressing, "s3-addressing", "auto", "for s3:// URLs: path (https://HOST/BUCKET/KEY), virtual (https://BUCKET.HOST/KEY) or auto (path with --s3-endpoint, virtual on AWS)")
}

// isS3 reports whether an archive argument is an s3:// URL.
func isS3(s string) bool { return strings.HasPrefix(strings.ToLower(s), "s3://") }

// isS3Prefix reports whether an s3:// URL names a prefix (a bucket, or a
// key ending in "/"): a library of the archives under it.
func isS3Prefix(s string) bool {
	_, key, err := s3.ParseURL(s)
	return err == nil && (key == "" || strings.HasSuffix(key, "/"))
}

// s3Options are the options of an S3 object: remote's, as the flags set
// them, plus the store's. Connections and read-ahead keep package s3's
// defaults unless --connections was given (0 asks for them).
func (v *verify) s3Options(log zerolog.Logger) (s3.Options, error) {
	ropt, err := v.net.options(v.cas(), v.cacheDir, log)
	if err != nil {
		return s3.Options{}, err
	}
	if len(ropt.Header.Values("Authorization")) > 0 {
		return s3.Options{}, fail(exitUsage, "--header Authorization: s3:// requests are signed with the AWS credentials; give those instead (environment, profile)")
	}
	ropt.NetrcFile = ""
	opt := s3.Options{Options: ropt, Endpoint: v.s3.endpoint, Region: v.s3.region, Profile: v.s3.profile}
	switch v.s3.addressing {
	case "", "auto":
		opt.Addressing = s3.AddressingAuto
	case "path":
		opt.Addressing = s3.AddressingPath
	case "virtual":
		opt.Addressing = s3.AddressingVirtual
	default:
		return opt, fail(exitUsage, "--s3-addressing must be auto, path or virtual, not %q", v.s3.addressing)
	}
	return opt, nil
}

// openS3 opens an archive in an S3 bucket. Errors carry exit code 2 and
// say what to fix.
func openS3(rawURL string, opt s3.Options) (*remote.File, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := s3.Open(ctx, rawURL, opt)
	if err == nil {
		return f, nil
	}
	if ctx.Err() != nil {
		return nil, fail(exitUsage, "%s: interrupted while opening it; nothing was mounted", rawURL)
	}
	return nil, s3Failure(rawURL, err)
}

func s3Failure(rawURL string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "s3: ")
	switch {
	case errors.Is(err, s3.ErrCredentials):
		msg += " (credentials are taken as the AWS CLI takes them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --s3-profile, ~/.aws/credentials...)"
	case errors.Is(err, remote.ErrUnavailable):
		msg += "; try again later, or raise --timeout"
	}
	if !strings.Contains(msg, rawURL) {
		msg = rawURL + ": " + msg
	}
	return fail(exitUsage, "%s", msg)
}

// listS3 lists the archives under an S3 prefix, each as a source.
func listS3(prefix string, v *verify) ([]source, error) {
	opt, err := v.s3Options(zerolog.Nop())
	if err != nil {
		return nil, err
	}
	bucket, _, err := s3.ParseURL(prefix)
	if err != nil {
		return nil, fail(exitUsage, "%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	objs, err := s3.List(ctx, prefix, opt)
	if err != nil {
		return nil, s3Failure(prefix, err)
	}
	var out []source
	for _, o := range objs {
		if o.Size == 0 {
			continue // an empty object holds no archive
		}
		out = append(out, source{arg: o.URL(bucket), base: path.Base(o.Key), size: o.Size})
	}
	if len(out) == 0 {
		return nil, fail(exitUsage, "%s: no object under this prefix", prefix)
	}
	return out, nil
}
