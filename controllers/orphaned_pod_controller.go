package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// orphanedPodReconciler releases the tracking finalizer of attempt Pods whose
// job is gone, is being deleted, or was replaced by a job of the same name:
// no outcome of theirs can be recorded any more, and the finalizer would keep
// them Terminating for ever.
type orphanedPodReconciler struct {
	client.Client
	APIReader client.Reader
}

func (r *orphanedPodReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !controllerutil.ContainsFinalizer(pod, ejv1.AttemptTrackingFinalizer) {
		return ctrl.Result{}, nil
	}
	owner := metav1.GetControllerOf(pod)
	if owner != nil {
		alive, err := r.ownerAlive(ctx, r.Client, pod.Namespace, owner)
		if err != nil || alive {
			return ctrl.Result{}, err
		}
		// The cache may lag behind the API server; only it can say the job is gone.
		if alive, err = r.ownerAlive(ctx, r.APIReader, pod.Namespace, owner); err != nil || alive {
			return ctrl.Result{}, err
		}
	}
	ctrl.LoggerFrom(ctx).V(1).Info("releasing the pod of a deleted job", "pod", pod.Name)
	return ctrl.Result{}, releasePod(ctx, r.Client, pod)
}

// ownerAlive reports whether the job that owns the Pod still exists and is
// not being deleted.
func (r *orphanedPodReconciler) ownerAlive(ctx context.Context, reader client.Reader, namespace string, owner *metav1.OwnerReference) (bool, error) {
	job := &ejv1.ExtractionJob{}
	err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: owner.Name}, job)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return job.UID == owner.UID && job.DeletionTimestamp.IsZero(), nil
}
