package controllers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	authv1alpha1 "github.com/hiringo/auth-operator/api/v1alpha1"
)

// clusterService is the Service named name that sends port to the container port called
// portName of this AuthService's app pods (authserver or redis).
func clusterService(as *authv1alpha1.AuthService, name, app, component, portName string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: as.Namespace, Labels: labels(as, app, component)},
		Spec: corev1.ServiceSpec{
			Selector: selector(as, app),
			Ports:    []corev1.ServicePort{{Name: portName, Port: port, TargetPort: intstr.FromString(portName), Protocol: corev1.ProtocolTCP}},
		},
	}
}
