package namedwatch

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// resync is how often the informer hands every version it holds to observe again, so
// that work observe could not finish (an unreachable Redis) is retried.
const resync = 10 * time.Minute

// Run follows the object named name in namespace until ctx ends, calling observe with
// each version the informer sees, added or updated; calls come one at a time. informer
// picks the object's kind from the factory, for example
// func(f informers.SharedInformerFactory) cache.SharedIndexInformer { return f.Core().V1().Secrets().Informer() }.
func Run(ctx context.Context, client kubernetes.Interface, namespace, name string,
	informer func(informers.SharedInformerFactory) cache.SharedIndexInformer, observe func(obj any)) error {
	factory := informers.NewSharedInformerFactoryWithOptions(client, resync,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	if _, err := informer(factory).AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		return fmt.Errorf("watching %s/%s: %w", namespace, name, err)
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	return nil
}
