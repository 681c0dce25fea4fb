package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// openS3 fetches s3://bucket/key with AWS's SDK (its s3 client alone, which
// pulls in only AWS's own modules, fewer than minio-go's) and the credentials
// the job's Secret puts in the environment, under the names the AWS SDKs use.
// There is no anonymous access: a public object can be fetched by its https
// URL instead.
func openS3(ctx context.Context, client *http.Client, u *url.URL, env func(string) string) (source, error) {
	bucket, key := u.Host, strings.TrimPrefix(u.Path, "/")
	what := redactURL(u)
	if bucket == "" || key == "" {
		return source{}, fail(podcontract.UsageError, nil, "S3 URLs look like s3://bucket/key, not %s", what)
	}
	s3Client, err := newS3Client(client, env, what)
	if err != nil {
		return source{}, err
	}
	// The URL's path is unescaped, so a key with a space is written
	// s3://bucket/a%20b; the client escapes it again as S3 wants it.
	object, err := s3Client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
		// S3 sends the checksum it keeps of the object, if it has one, and
		// the client checks the body against it at its end: a transfer
		// that garbled the file fails as a connection failure, to be
		// fetched again, rather than as a corrupted file.
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return source{}, s3Failure(ctx, err, what)
	}
	size := int64(-1)
	if object.ContentLength != nil {
		size = *object.ContentLength
	}
	return downloadBody(ctx, object.Body, size, what), nil
}

// newS3Client builds the client from the same environment variables as the
// AWS SDKs, read here rather than by the SDK's config module, which would
// pull in SSO, STS and the instance metadata service, none of which a job's
// Secret provides.
func newS3Client(client *http.Client, env func(string) string, what string) (*s3.Client, error) {
	creds := aws.Credentials{
		AccessKeyID:     env("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    env("AWS_SESSION_TOKEN"),
		Source:          "environment",
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, fail(podcontract.AuthenticationFailed, nil,
			"%s needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (give the job a source.secretRef)", what)
	}
	options := s3.Options{
		Region: firstNonEmpty(env("AWS_REGION"), env("AWS_DEFAULT_REGION"), "us-east-1"),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		HTTPClient: client,
		// The operator retries the whole attempt with its own backoff; retries
		// in here would only hide the first failure and eat the timeout.
		Retryer: aws.NopRetryer{},
		// Progress lines on stderr start with a timestamp (see the package
		// doc); the SDK's own warnings would not.
		Logger: logging.Nop{},
		DisableLogOutputChecksumValidationSkipped: true,
	}
	// On AWS the client addresses buckets virtual-hosted style, which AWS
	// prefers, and falls back to path style for names with dots, which break
	// TLS host names there; a custom endpoint (MinIO, Ceph, a test server)
	// gets path style, which every S3 implementation understands.
	if endpoint := firstNonEmpty(env("AWS_ENDPOINT_URL_S3"), env("AWS_ENDPOINT_URL")); endpoint != "" {
		parsed, err := url.Parse(endpoint)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return nil, fail(podcontract.UsageError, nil, "AWS_ENDPOINT_URL %q is not an http or https URL", oneLine(endpoint, 100))
		}
		options.BaseEndpoint = aws.String(endpoint)
		options.UsePathStyle = true
	}
	return s3.New(options), nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// s3ErrorTypes maps S3's error codes, which say more than its HTTP statuses:
// S3 answers 403 both to a bad signature and to a missing grant, and 503 when
// it throttles.
var s3ErrorTypes = map[string]string{
	"NoSuchKey":                    podcontract.SourceNotFound,
	"NoSuchBucket":                 podcontract.SourceNotFound,
	"AccessDenied":                 podcontract.PermissionDenied,
	"AllAccessDisabled":            podcontract.PermissionDenied,
	"InvalidAccessKeyId":           podcontract.AuthenticationFailed,
	"SignatureDoesNotMatch":        podcontract.AuthenticationFailed,
	"ExpiredToken":                 podcontract.AuthenticationFailed,
	"InvalidToken":                 podcontract.AuthenticationFailed,
	"TokenRefreshRequired":         podcontract.AuthenticationFailed,
	"AuthorizationHeaderMalformed": podcontract.AuthenticationFailed,
	"RequestTimeTooSkewed":         podcontract.AuthenticationFailed,
	"SlowDown":                     podcontract.RateLimitExceeded,
	"RequestLimitExceeded":         podcontract.RateLimitExceeded,
	"ThrottlingException":          podcontract.RateLimitExceeded,
	"RequestTimeout":               podcontract.TimeoutError,
	"InternalError":                podcontract.ServiceUnavailable,
	"ServiceUnavailable":           podcontract.ServiceUnavailable,
}

// s3Failure classifies an error of the S3 client: an answer from S3 by its
// error code where the code says more than the status, else by the HTTP
// status; no answer at all as a network failure.
func s3Failure(ctx context.Context, err error, what string) error {
	// A request that got no answer is a response error too, of status 0.
	var response *awshttp.ResponseError
	var notSent *smithyhttp.RequestSendError
	if !errors.As(err, &response) || errors.As(err, &notSent) {
		return networkFailure(ctx, err, "fetching "+what)
	}
	status := response.HTTPStatusCode()
	// Without an error document the client names the status ("NotFound"),
	// which is no S3 error code and falls through to the status, as do codes
	// the table lacks.
	// Only a code of the table is named, as this program spells it; the
	// error document's message, and any other code, is the store's text.
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if errorType, known := s3ErrorTypes[code]; known {
			f := fail(errorType, nil, "S3 answered %d %s for %s", status, code, what)
			if errorType == podcontract.RateLimitExceeded || status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
				// Throttled: S3 and S3-compatible stores may say for how long.
				f = withRetryAfter(f, response.Response.Header, time.Now())
			}
			return f
		}
	}
	return httpStatusFailure(status, response.Response.Header, nil, what)
}
