// Command testextractor is a test-only extractor for the real-node tests: it
// does what a test asks through environment variables, which an
// ExtractorClass's env sets, where the reference extractor cannot (it
// streams, so its memory stays small, and it always writes its termination
// message):
//
//   - TESTEXTRACTOR_ALLOCATE_MIB=N allocates N MiB and writes every page of
//     it, so that the resident memory really grows by N MiB (a memory limit
//     below that gets the container OOMKilled), then succeeds.
//   - TESTEXTRACTOR_CRASH=1 writes the line CrashLine (after a timestamp) to
//     stderr and exits with 70 (EX_SOFTWARE) without writing the termination
//     log, so that the kubelet's FallbackToLogsOnError puts the log's tail
//     there.
//   - TESTEXTRACTOR_FAIL_MESSAGE_BYTES=N fails as a permanent CorruptedFile
//     whose termination message is N bytes long and ends with
//     LongMessageEnd, written as it is, past the Pod contract's limits, as
//     a misbehaving extractor would: the kubelet keeps only the first 4 KiB
//     of a termination message, and a test checks that cut and what the
//     operator makes of what is left.
//   - With none of these it succeeds at once.
//
// A success writes, as the Pod contract asks, a JSON object to
// /dev/termination-log: the job's format, source URL and attempt (from the
// EXTRACTION_* variables the operator sets), and allocatedMiB. A variable
// that does not parse is a UsageError failure.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/pybase/extraction-operator/api/podcontract"
)

const (
	// EnvAllocateMiB asks for that many MiB to be allocated and written
	// before the success.
	EnvAllocateMiB = "TESTEXTRACTOR_ALLOCATE_MIB"
	// EnvCrash set to 1 asks for a crash without a termination message.
	EnvCrash = "TESTEXTRACTOR_CRASH"
	// CrashLine is what a crash logs, after the log's timestamp, for a test
	// to find in the message the kubelet takes from the logs. The timestamp
	// first keeps it from reading as an "ErrorType: message" line.
	CrashLine = "testextractor crashed on purpose (TESTEXTRACTOR_CRASH=1)"
	// EnvFailMessageBytes asks for a failure with a termination message of
	// that many bytes.
	EnvFailMessageBytes = "TESTEXTRACTOR_FAIL_MESSAGE_BYTES"
	// LongMessageEnd ends the long message, so a test can tell it was cut.
	LongMessageEnd = "END-OF-THE-LONG-MESSAGE"
)

// crashExitCode is an exit code the operator reads as an unknown, so
// retryable, failure.
var crashExitCode = podcontract.ExitCode(podcontract.InternalError)

func main() {
	os.Exit(run(os.Getenv, podcontract.TerminationLogPath, os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(env func(string) string, terminationLog string, stderr io.Writer) int {
	logger := log.New(stderr, "", log.LstdFlags|log.LUTC)
	switch crash := env(EnvCrash); crash {
	case "":
	case "1":
		logger.Print(CrashLine)
		return crashExitCode
	default:
		return fail(terminationLog, logger, fmt.Errorf("%s must be 1 or unset, not %q", EnvCrash, crash))
	}

	if value := env(EnvFailMessageBytes); value != "" {
		size, err := strconv.Atoi(value)
		if err != nil || size < 0 {
			return fail(terminationLog, logger, fmt.Errorf("%s must be a whole number of bytes, not %q", EnvFailMessageBytes, value))
		}
		return failWithLongMessage(terminationLog, logger, size)
	}

	allocatedMiB := 0
	if value := env(EnvAllocateMiB); value != "" {
		mib, err := strconv.Atoi(value)
		if err != nil || mib < 0 {
			return fail(terminationLog, logger, fmt.Errorf("%s must be a whole number of MiB, not %q", EnvAllocateMiB, value))
		}
		logger.Printf("allocating and writing %d MiB", mib)
		touch(mib)
		allocatedMiB = mib
	}

	result, err := podcontract.MarshalResult(map[string]any{
		"format":       env(podcontract.EnvFormat),
		"sourceURL":    env(podcontract.EnvSourceURL),
		"attempt":      env(podcontract.EnvAttempt),
		"allocatedMiB": allocatedMiB,
	})
	if err != nil {
		return fail(terminationLog, logger, err)
	}
	if err := os.WriteFile(terminationLog, result, 0o644); err != nil {
		logger.Printf("writing the termination log: %v", err)
		return podcontract.ExitCode(podcontract.IOError)
	}
	logger.Printf("succeeded")
	return 0
}

// touch allocates mib MiB and writes a byte on each page, which makes the
// kernel back every page with memory.
func touch(mib int) {
	const page = 4096
	memory := make([]byte, mib<<20)
	for i := 0; i < len(memory); i += page {
		memory[i] = 1
	}
	runtime.KeepAlive(memory)
}

// fail reports a UsageError as the Pod contract asks and returns its exit
// code.
func fail(terminationLog string, logger *log.Logger, err error) int {
	logger.Printf("failing: %v", err)
	message, err := podcontract.FormatFailure(podcontract.UsageError, err.Error())
	if err == nil {
		err = os.WriteFile(terminationLog, []byte(message), 0o644)
	}
	if err != nil {
		logger.Printf("writing the termination log: %v", err)
	}
	return podcontract.ExitCode(podcontract.UsageError)
}

// failWithLongMessage writes a CorruptedFile failure of size bytes without
// podcontract.FormatFailure, which would keep it within the contract's
// limits: the point is a message longer than the kubelet keeps.
func failWithLongMessage(terminationLog string, logger *log.Logger, size int) int {
	head := podcontract.CorruptedFile + ": a message longer than the kubelet keeps "
	filler := max(size-len(head)-len(LongMessageEnd), 0)
	message := head + strings.Repeat("x", filler) + LongMessageEnd
	logger.Printf("failing with a termination message of %d bytes", len(message))
	if err := os.WriteFile(terminationLog, []byte(message), 0o644); err != nil {
		logger.Printf("writing the termination log: %v", err)
		return podcontract.ExitCode(podcontract.IOError)
	}
	return podcontract.ExitCode(podcontract.CorruptedFile)
}
