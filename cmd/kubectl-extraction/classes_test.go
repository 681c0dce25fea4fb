package main

import (
	"bytes"
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// newClass creates a cluster-scoped class with the status the operator would
// write, and deletes it after the spec, so that every spec sees only its own.
func newClass(ctx context.Context, name string, status ejv1.ExtractorClassStatus, mutate func(*ejv1.ExtractorClassSpec)) {
	class := &ejv1.ExtractorClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       ejv1.ExtractorClassSpec{Formats: []ejv1.Format{ejv1.FormatPDF}, Image: "registry.example/extractor:1"},
	}
	if mutate != nil {
		mutate(&class.Spec)
	}
	Expect(admin.Create(ctx, class)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(admin.Delete(ctx, class)).To(Succeed()) })
	class.Status = status
	Expect(admin.Status().Update(ctx, class)).To(Succeed())
}

var _ = Describe("classes", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("lists each class's formats, default, running attempts against maxRunning, queue and per-namespace cap, by name", func() {
		newClass(ctx, "werk24-api", ejv1.ExtractorClassStatus{Running: 5, Queued: 12}, func(s *ejv1.ExtractorClassSpec) {
			s.Formats = []ejv1.Format{ejv1.FormatWerk24}
			s.MaxRunning, s.MaxRunningPerNamespace = ptr.To[int32](5), ptr.To[int32](2)
		})
		newClass(ctx, "cad", ejv1.ExtractorClassStatus{Running: 2}, func(s *ejv1.ExtractorClassSpec) {
			s.Formats = []ejv1.Format{ejv1.FormatDXF, ejv1.FormatIFC, ejv1.FormatSTEP}
			s.Default = true
		})
		newClass(ctx, "pdf", ejv1.ExtractorClassStatus{Running: 3}, func(s *ejv1.ExtractorClassSpec) {
			s.Default = true
			s.MaxRunning = ptr.To[int32](3)
		})
		var out bytes.Buffer

		Expect(Classes(ctx, admin, &out, time.Now())).To(Succeed())

		Expect(out.String()).To(Equal(strings.Join([]string{
			"NAME         FORMATS        DEFAULT   RUNNING/MAX   QUEUED   PER NAMESPACE",
			"cad          dxf,ifc,step   true      2/-           0        -",
			"pdf          pdf            true      3/3           0        -",
			"werk24-api   werk24         false     5/5           12       2",
			"",
		}, "\n")))
	})

	It("says that no class exists, and what that means for jobs", func() {
		out, _, err := cli(newClock(), "--kubeconfig", adminKubeconfig, "classes")

		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("No ExtractorClasses found: jobs stay Pending until a cluster admin creates one.\n"))
	})

	It("tells a user whom RBAC refuses the list that a ClusterRole is needed", func() {
		cfg := rest.CopyConfig(adminCfg)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: readerName}
		c, err := NewClient(cfg)
		Expect(err).NotTo(HaveOccurred())

		err = Classes(ctx, c, &bytes.Buffer{}, time.Now())

		Expect(err).To(MatchError(ContainSubstring(`User "reader" cannot list resource "extractorclasses" in API group "extraction.pybase.io" at the cluster scope`)))
		Expect(err).To(MatchError(ContainSubstring("Check with `kubectl auth can-i list extractorclasses.extraction.pybase.io`, " +
			`and ask a cluster admin for a ClusterRole granting "list" on extractorclasses.extraction.pybase.io.`)))
	})
})
