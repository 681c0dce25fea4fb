package main

import (
	"net/http"
	"testing"
	"time"
)

func TestSignV4(t *testing.T) {
	t.Run("the GET Object example of the AWS documentation gets AWS's signature", func(t *testing.T) {
		// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
		req, err := http.NewRequest(http.MethodGet, "https://examplebucket.s3.amazonaws.com/test.txt", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Range", "bytes=0-9")
		creds := awsCredentials{accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
		signV4(req, creds, "us-east-1", "s3", time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC))

		canonical, _ := canonicalRequest(req)
		if got, want := hexSHA256(canonical), "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"; got != want {
			t.Errorf("canonical request hashes to %s, want %s:\n%s", got, want, canonical)
		}
		want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
			"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," +
			"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
		if got := req.Header.Get("Authorization"); got != want {
			t.Errorf("Authorization\n got %s\nwant %s", got, want)
		}
	})
	t.Run("a session token is sent and signed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "https://b.s3.amazonaws.com/k", nil)
		signV4(req, awsCredentials{accessKeyID: "A", secretAccessKey: "S", sessionToken: "T"}, "us-east-1", "s3", time.Now())
		_, signed := canonicalRequest(req)
		if req.Header.Get("X-Amz-Security-Token") != "T" || signed != "host;x-amz-content-sha256;x-amz-date;x-amz-security-token" {
			t.Errorf("token %q, signed headers %q", req.Header.Get("X-Amz-Security-Token"), signed)
		}
	})
}

func TestS3ObjectURL(t *testing.T) {
	tests := []struct {
		name, endpoint, bucket, key string
		want                        string
	}{
		{name: "AWS buckets are addressed virtual-hosted style", bucket: "drawings", key: "a/b.pdf",
			want: "https://drawings.s3.eu-central-1.amazonaws.com/a/b.pdf"},
		{name: "AWS buckets with dots are addressed path style, which keeps TLS host names valid", bucket: "my.drawings", key: "b.pdf",
			want: "https://s3.eu-central-1.amazonaws.com/my.drawings/b.pdf"},
		{name: "custom endpoints are addressed path style, below their own path", endpoint: "http://minio.local:9000/storage/", bucket: "drawings", key: "b.pdf",
			want: "http://minio.local:9000/storage/drawings/b.pdf"},
		{name: "keys are escaped as SigV4 escapes them", bucket: "drawings", key: "plans/floor 1+2 (final).pdf",
			want: "https://drawings.s3.eu-central-1.amazonaws.com/plans/floor%201%2B2%20%28final%29.pdf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s3ObjectURL(tt.endpoint, "eu-central-1", tt.bucket, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("an endpoint that is not an http URL is a UsageError", func(t *testing.T) {
		_, err := s3ObjectURL("minio.local:9000", "us-east-1", "b", "k")
		wantFailure(t, err, typeUsage, "AWS_ENDPOINT_URL")
	})
}

func TestS3StatusFailure(t *testing.T) {
	s3Error := func(code string) []byte {
		return []byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>details</Message></Error>`)
	}
	tests := []struct {
		name     string
		status   int
		body     []byte
		wantType string
	}{
		{"NoSuchKey is SourceNotFound", 404, s3Error("NoSuchKey"), typeSourceNotFound},
		{"NoSuchBucket is SourceNotFound", 404, s3Error("NoSuchBucket"), typeSourceNotFound},
		{"a 403 AccessDenied is PermissionDenied", 403, s3Error("AccessDenied"), typePermission},
		{"a 403 SignatureDoesNotMatch is AuthenticationFailed", 403, s3Error("SignatureDoesNotMatch"), typeAuthentication},
		{"a 403 InvalidAccessKeyId is AuthenticationFailed", 403, s3Error("InvalidAccessKeyId"), typeAuthentication},
		{"a 400 ExpiredToken is AuthenticationFailed", 400, s3Error("ExpiredToken"), typeAuthentication},
		{"a 503 SlowDown is RateLimitExceeded", 503, s3Error("SlowDown"), typeRateLimit},
		{"a 400 RequestTimeout is TimeoutError", 400, s3Error("RequestTimeout"), typeTimeout},
		{"a 500 InternalError is ServiceUnavailable", 500, s3Error("InternalError"), typeServiceUnavailable},
		{"an unknown code falls back to the HTTP status", 503, s3Error("SomethingNew"), typeServiceUnavailable},
		{"a body that is not S3's XML falls back to the HTTP status", 403, []byte("<html>proxy says no</html>"), typePermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s3StatusFailure(tt.status, http.Header{}, tt.body, "s3://b/k")
			if got.errorType != tt.wantType {
				t.Errorf("got %s, want %s", got.terminationLine(), tt.wantType)
			}
		})
	}
}

func TestAWSURIEncode(t *testing.T) {
	tests := []struct {
		name, in    string
		encodeSlash bool
		want        string
	}{
		{"unreserved characters stay", "AZaz09-_.~", true, "AZaz09-_.~"},
		{"everything else is escaped in upper case hex", " +!*'()&=ü", true, "%20%2B%21%2A%27%28%29%26%3D%C3%BC"},
		{"slashes stay in paths", "a/b", false, "a/b"},
		{"slashes are escaped in query values", "a/b", true, "a%2Fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := awsURIEncode(tt.in, tt.encodeSlash); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
