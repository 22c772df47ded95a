/* kinds.c - the table of kinds. See kinds.h. */
#include "kinds.h"

#include <stdio.h>
#include <string.h>

const struct kind_info kinds[KIND_COUNT] = {
    [KIND_PIPELINE] = {"SalesPipeline", OP_API_VERSION, "/apis/" OP_API_VERSION, "salespipelines",
                       false, false, false},
    [KIND_CONFIGMAP] = {"ConfigMap", "v1", "/api/v1", "configmaps", true, true, false},
    [KIND_SERVICE] = {"Service", "v1", "/api/v1", "services", true, true, false},
    [KIND_DEPLOYMENT] = {"Deployment", "apps/v1", "/apis/apps/v1", "deployments", true, true,
                         false},
    [KIND_HPA] = {"HorizontalPodAutoscaler", "autoscaling/v2", "/apis/autoscaling/v2",
                  "horizontalpodautoscalers", true, true, false},
    [KIND_INGRESS] = {"Ingress", "networking.k8s.io/v1", "/apis/networking.k8s.io/v1", "ingresses",
                      true, true, false},
    [KIND_NETPOL] = {"NetworkPolicy", "networking.k8s.io/v1", "/apis/networking.k8s.io/v1",
                     "networkpolicies", true, true, false},
    /* Secrets are watched as metadata only: the informers never hold a password. */
    [KIND_SECRET] = {"Secret", "v1", "/api/v1", "secrets", true, true, false},
    [KIND_PVC] = {"PersistentVolumeClaim", "v1", "/api/v1", "persistentvolumeclaims", true, true,
                  false},
    [KIND_KAFKA] = {"Kafka", "kafka.strimzi.io/v1", "/apis/kafka.strimzi.io/v1", "kafkas", true,
                    true, true},
    [KIND_KAFKA_NODEPOOL] = {"KafkaNodePool", "kafka.strimzi.io/v1", "/apis/kafka.strimzi.io/v1",
                             "kafkanodepools", true, true, true},
    [KIND_KAFKA_TOPIC] = {"KafkaTopic", "kafka.strimzi.io/v1", "/apis/kafka.strimzi.io/v1",
                          "kafkatopics", true, true, true},
    [KIND_VM] = {"VirtualMachine", "kubevirt.io/v1", "/apis/kubevirt.io/v1", "virtualmachines",
                 true, true, true},
};

int kinds_path(char *buf, size_t cap, enum kind_id k, const char *ns, const char *name)
{
    const struct kind_info *ki = &kinds[k];
    int n;
    if (ns && *ns)
        n = snprintf(buf, cap, "%s/namespaces/%s/%s%s%s", ki->prefix, ns, ki->plural,
                     name ? "/" : "", name ? name : "");
    else
        n = snprintf(buf, cap, "%s/%s", ki->prefix, ki->plural);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

enum kind_id kinds_find(const char *api_version, const char *kind)
{
    for (int k = 0; k < KIND_COUNT; k++)
        if (!strcmp(kinds[k].kind, kind) && !strcmp(kinds[k].api_version, api_version))
            return (enum kind_id)k;
    return KIND_COUNT;
}
