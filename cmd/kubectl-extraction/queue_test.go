package main

import (
	"bytes"
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// queuedJob is a job as the queue sees it: created at created, and ready
// again at nextRetryAt when it is past its first attempt.
func queuedJob(namespace, name string, created time.Time, attempt int32, nextRetryAt *time.Time) *ejv1.ExtractionJob {
	job := &ejv1.ExtractionJob{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, CreationTimestamp: metav1.NewTime(created)}}
	job.Status.Attempt = attempt
	if nextRetryAt != nil {
		job.Status.NextRetryAt = ptr.To(ejv1.NewPreciseTime(*nextRetryAt))
	}
	return job
}

// grantInNamespace lets user do verbs on the ExtractionJobs of namespace only.
func grantInNamespace(ctx context.Context, namespace, user string, verbs ...string) {
	GinkgoHelper()
	name := "jobs-" + user
	Expect(admin.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{ejv1.GroupVersion.Group}, Resources: []string{"extractionjobs"}, Verbs: verbs}},
	})).To(Succeed())
	Expect(admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
}

var _ = DescribeTable("compareQueueOrder puts the job that became ready first first, then by namespace and name",
	func(a, b *ejv1.ExtractionJob, want int) { Expect(compareQueueOrder(a, b)).To(Equal(want)) },
	Entry("a first attempt is ready at its creation",
		queuedJob("ns", "old", testNow, 0, nil), queuedJob("ns", "new", testNow.Add(time.Second), 0, nil), -1),
	Entry("a retry is ready at its nextRetryAt, not at its creation",
		queuedJob("ns", "retry", testNow.Add(-time.Hour), 2, ptr.To(testNow.Add(time.Minute))), queuedJob("ns", "new", testNow, 0, nil), 1),
	Entry("a first attempt ignores a nextRetryAt",
		queuedJob("ns", "new", testNow, 0, ptr.To(testNow.Add(time.Hour))), queuedJob("ns", "later", testNow.Add(time.Second), 0, nil), -1),
	Entry("a retry without a nextRetryAt counts from its creation",
		queuedJob("ns", "manual", testNow, 3, nil), queuedJob("ns", "new", testNow.Add(time.Second), 0, nil), -1),
	Entry("ties go by namespace first",
		queuedJob("b", "a", testNow, 0, nil), queuedJob("a", "z", testNow, 0, nil), 1),
	Entry("then by name",
		queuedJob("a", "y", testNow, 0, nil), queuedJob("a", "z", testNow, 0, nil), -1),
	Entry("a job equals itself",
		queuedJob("a", "y", testNow, 0, nil), queuedJob("a", "y", testNow, 0, nil), 0),
)

var _ = Describe("status of a Queued job", func() {
	var (
		ctx        context.Context
		ns, other  string
		class      string
		fresh      *ejv1.ExtractionJob
		earlyRetry *ejv1.ExtractionJob
	)
	// queued gives a job phase Queued in class, as the operator would, past
	// its first attempt when retryAt is set.
	queued := func(namespace, name, class string, retryAt *ejv1.PreciseTime) *ejv1.ExtractionJob {
		status := ejv1.ExtractionJobStatus{
			Phase: ejv1.PhaseQueued, ExtractorClassName: class, Retries: "0/3",
			Message: "Waiting for a free slot in ExtractorClass " + class + " (maxRunning 2).",
		}
		if retryAt != nil {
			status.Attempt, status.RetryCount, status.Retries, status.NextRetryAt = 1, 1, "1/3", retryAt
		}
		return jobIn(ctx, namespace, name, status)
	}
	// The API server sets creation times from its own clock, so the retries'
	// times are relative to it, an hour away so that they never tie.
	realAt := func(d time.Duration) *ejv1.PreciseTime {
		return ptr.To(ejv1.NewPreciseTime(time.Now().Add(d).Truncate(time.Second)))
	}

	BeforeEach(func() {
		ctx = context.Background()
		ns, other = newNamespace(ctx), newNamespace(ctx)
		class = "capped-" + ns // only this spec's jobs are in it
		earlyRetry = queued(ns, "early-retry", class, realAt(-time.Hour))
		queued(other, "elsewhere", class, realAt(-30*time.Minute))
		queued(ns, "fresh-b", class, nil)
		fresh = queued(ns, "fresh-c", class, nil) // created after fresh-b, or in the same second and after it by name
		queued(ns, "late-retry", class, realAt(time.Hour))
		queued(ns, "other-class", "another-"+ns, realAt(-2*time.Hour))
		jobIn(ctx, ns, "running", ejv1.ExtractionJobStatus{Phase: ejv1.PhaseRunning, ExtractorClassName: class})
	})

	show := func(c client.Client, job *ejv1.ExtractionJob) string {
		GinkgoHelper()
		var out bytes.Buffer
		Expect(Status(ctx, c, &out, client.ObjectKeyFromObject(job), newClock())).To(Succeed())
		return out.String()
	}

	It("shows its class and its position among the Queued jobs of its class in all namespaces, in FIFO order", func() {
		out := show(admin, fresh)

		Expect(out).To(ContainSubstring("Phase:       Queued\n"))
		Expect(out).To(ContainSubstring("Extractor:   " + class + " (the default ExtractorClass for pdf)\n"))
		Expect(out).To(ContainSubstring("Message:     Waiting for a free slot in ExtractorClass " + class + " (maxRunning 2).\n" +
			"Queue:       position 4 of 5 Queued jobs in the class (first come, first served)\n"))

		Expect(show(admin, earlyRetry)).To(ContainSubstring("Queue:       position 1 of 5 Queued jobs in the class (first come, first served)\n"))
	})

	It("counts only the job's namespace for a user who may list only there, and says so", func() {
		tenant := "tenant-" + ns
		grantInNamespace(ctx, ns, tenant, "get", "list", "watch")

		out, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "--as", tenant, "-n", ns, "status", fresh.Name)

		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Queue:       position 3 among the Queued jobs you may list (namespace " + ns + " only)\n"))
	})

	It("still shows the status to a user who may get the job but list nothing", func() {
		getter := "getter-" + ns
		grantInNamespace(ctx, ns, getter, "get")

		out, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "--as", getter, "-n", ns, "status", fresh.Name)

		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("Queue:       position unknown: you may not list ExtractionJobs in namespace " + ns + "\n"))
	})

	It("shows no queue position for a job that is not Queued", func() {
		job := jobIn(ctx, ns, "pending", ejv1.ExtractionJobStatus{Phase: ejv1.PhasePending, ExtractorClassName: class})

		Expect(show(admin, job)).NotTo(ContainSubstring("Queue:"))
	})
})
