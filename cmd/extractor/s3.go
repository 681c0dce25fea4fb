package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// emptyPayloadHash is the SHA-256 of an empty body, which is what a GET sends.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

type awsCredentials struct {
	accessKeyID, secretAccessKey, sessionToken string
}

// openS3 fetches s3://bucket/key with the credentials the job's Secret puts
// in the environment, under the names the AWS SDKs use. There is no anonymous
// access: a public object can be fetched by its https URL instead.
func openS3(ctx context.Context, client *http.Client, u *url.URL, env func(string) string, now time.Time) (source, error) {
	bucket, key := u.Host, strings.TrimPrefix(u.Path, "/")
	if bucket == "" || key == "" {
		return source{}, fail(typeUsage, nil, "S3 URLs look like s3://bucket/key, not %s", redactURL(u))
	}
	creds := awsCredentials{
		accessKeyID:     env("AWS_ACCESS_KEY_ID"),
		secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
		sessionToken:    env("AWS_SESSION_TOKEN"),
	}
	if creds.accessKeyID == "" || creds.secretAccessKey == "" {
		return source{}, fail(typeAuthentication, nil,
			"%s needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (give the job a source.secretRef)", redactURL(u))
	}
	region := firstNonEmpty(env("AWS_REGION"), env("AWS_DEFAULT_REGION"), "us-east-1")
	endpoint := firstNonEmpty(env("AWS_ENDPOINT_URL_S3"), env("AWS_ENDPOINT_URL"))
	object, err := s3ObjectURL(endpoint, region, bucket, key)
	if err != nil {
		return source{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, object.String(), nil)
	if err != nil {
		return source{}, fail(typeUsage, err, "cannot request %s", redactURL(u))
	}
	// NewRequest re-parses the URL and would lose the strict escaping that
	// the signature covers.
	req.URL = object
	signV4(req, creds, region, "s3", now)
	return doGet(ctx, client, req, redactURL(u), s3StatusFailure)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// s3ObjectURL addresses an object. On AWS itself it uses virtual-hosted
// style, which AWS prefers, except for bucket names with dots, which break
// TLS host names there; a custom endpoint (MinIO, Ceph, a test server) gets
// path style, which every S3 implementation understands.
func s3ObjectURL(endpoint, region, bucket, key string) (*url.URL, error) {
	var u *url.URL
	objectPath := "/" + key
	switch {
	case endpoint == "" && !strings.Contains(bucket, "."):
		u = &url.URL{Scheme: "https", Host: bucket + ".s3." + region + ".amazonaws.com"}
	case endpoint == "":
		u = &url.URL{Scheme: "https", Host: "s3." + region + ".amazonaws.com"}
		objectPath = "/" + bucket + objectPath
	default:
		parsed, err := url.Parse(endpoint)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return nil, fail(typeUsage, nil, "AWS_ENDPOINT_URL %q is not an http or https URL", oneLine(endpoint, 100))
		}
		u = &url.URL{Scheme: parsed.Scheme, Host: parsed.Host}
		objectPath = strings.TrimSuffix(parsed.Path, "/") + "/" + bucket + objectPath
	}
	u.Path = objectPath
	u.RawPath = awsURIEncode(objectPath, false)
	return u, nil
}

// signV4 signs req with AWS Signature Version 4 for a request without a
// body, as https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
// describes. It signs every header already set on req, plus host.
func signV4(req *http.Request, creds awsCredentials, region, service string, now time.Time) {
	amzDate := now.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	req.Header.Set("X-Amz-Date", amzDate)
	if req.Header.Get("X-Amz-Content-Sha256") == "" {
		req.Header.Set("X-Amz-Content-Sha256", emptyPayloadHash)
	}
	if creds.sessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", creds.sessionToken)
	}
	req.Header.Del("Authorization")

	canonical, signedHeaders := canonicalRequest(req)
	scope := day + "/" + region + "/" + service + "/aws4_request"
	stringToSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hexSHA256(canonical)
	key := hmacSHA256([]byte("AWS4"+creds.secretAccessKey), day)
	for _, part := range []string{region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	signature := hex.EncodeToString(hmacSHA256(key, stringToSign))
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
		creds.accessKeyID, scope, signedHeaders, signature))
}

// canonicalRequest is SigV4's canonical form of req and the list of the
// headers it signs.
func canonicalRequest(req *http.Request) (canonical, signedHeaders string) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := map[string]string{"host": host}
	for name, values := range req.Header {
		name = strings.ToLower(name)
		if name == "authorization" || name == "user-agent" {
			continue
		}
		trimmed := make([]string, len(values))
		for i, v := range values {
			trimmed[i] = strings.Join(strings.Fields(v), " ")
		}
		headers[name] = strings.Join(trimmed, ",")
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names)
	var lines strings.Builder
	for _, name := range names {
		lines.WriteString(name + ":" + headers[name] + "\n")
	}

	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	signedHeaders = strings.Join(names, ";")
	canonical = strings.Join([]string{
		req.Method, path, canonicalQuery(req.URL.Query()), lines.String(), signedHeaders,
		req.Header.Get("X-Amz-Content-Sha256"),
	}, "\n")
	return canonical, signedHeaders
}

func canonicalQuery(query url.Values) string {
	var pairs []string
	for key, values := range query {
		for _, v := range values {
			pairs = append(pairs, awsURIEncode(key, true)+"="+awsURIEncode(v, true))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

// awsURIEncode escapes every byte but the unreserved characters of RFC 3986,
// as SigV4 requires (Go's own escaping leaves more characters alone).
func awsURIEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}

// s3ErrorTypes maps S3's error codes, which say more than its HTTP statuses:
// S3 answers 403 both to a bad signature and to a missing grant, and 503 when
// it throttles.
var s3ErrorTypes = map[string]string{
	"NoSuchKey":                    typeSourceNotFound,
	"NoSuchBucket":                 typeSourceNotFound,
	"AccessDenied":                 typePermission,
	"AllAccessDisabled":            typePermission,
	"InvalidAccessKeyId":           typeAuthentication,
	"SignatureDoesNotMatch":        typeAuthentication,
	"ExpiredToken":                 typeAuthentication,
	"InvalidToken":                 typeAuthentication,
	"TokenRefreshRequired":         typeAuthentication,
	"AuthorizationHeaderMalformed": typeAuthentication,
	"SlowDown":                     typeRateLimit,
	"RequestLimitExceeded":         typeRateLimit,
	"RequestTimeout":               typeTimeout,
	"InternalError":                typeServiceUnavailable,
	"ServiceUnavailable":           typeServiceUnavailable,
}

// s3StatusFailure reads S3's XML error document; without one it falls back
// to the plain HTTP mapping.
func s3StatusFailure(status int, header http.Header, body []byte, what string) *failure {
	var doc struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(body, &doc) != nil || doc.Code == "" {
		return httpStatusFailure(status, header, body, what)
	}
	errorType, known := s3ErrorTypes[doc.Code]
	if !known {
		return httpStatusFailure(status, header, body, what+" ("+oneLine(doc.Code, 64)+")")
	}
	message := fmt.Sprintf("S3 answered %d %s for %s", status, oneLine(doc.Code, 64), what)
	if doc.Message != "" {
		message += ": " + oneLine(doc.Message, 300)
	}
	return fail(errorType, nil, "%s", message)
}
