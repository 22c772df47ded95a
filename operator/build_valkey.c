/* build_valkey.c - Valkey in KubeVirt VirtualMachines (kubevirt.io/v1).
 *
 * One primary VM (AOF on a PersistentVolumeClaim disk when spec.valkey.persistence) and
 * spec.valkey.replicas - 1 replica VMs, from our disk image (scripts/valkey-disk.sh, a
 * containerDisk with Valkey and cloud-init preinstalled) that cloud-init configures
 * (cloudinit.c). The user data reaches KubeVirt through a Secret (cloudInitNoCloud.secretRef),
 * so the password is never in a VM spec. Services select the VMs' virt-launcher pods by the
 * labels of the VM template: the primary for writes (the consumer), the replicas for reads
 * (Grafana; the primary when there are no replicas). The password comes from valkey_password.c.
 *
 * All of it lives in the data namespace (spec.valkey.namespace, default <ns>-data), made here
 * with the privileged Pod Security level that KubeVirt's virt-launcher pods need, so that the
 * workers' namespace keeps its own (restricted) level. */
#include "build.h"
#include "cloudinit.h"
#include "infra.h"
#include "quantity.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *build_valkey_secret(const struct pipeline *p, const char *password)
{
    char name[128];
    infra_password_secret(p, name, sizeof name);
    return infra_secret(p, name, "valkey", INFRA_VALKEY_SECRET_KEY, password);
}

static const char *component_of(enum valkey_role role)
{
    return role == VALKEY_PRIMARY ? "valkey-primary" : "valkey-replica";
}

static void cloudinit_secret_name(const struct pipeline *p, enum valkey_role role, char *buf,
                                  size_t cap)
{
    snprintf(buf, cap, "%s-%s-cloudinit", p->name, component_of(role));
}

cJSON *build_valkey_cloudinit_secret(const struct pipeline *p, enum valkey_role role,
                                     const char *password)
{
    char name[128];
    char *userdata = cloudinit_render(p, role, password);
    if (!userdata)
        return NULL;
    cloudinit_secret_name(p, role, name, sizeof name);
    cJSON *o = infra_secret_in(p, p->valkey.ns, name, component_of(role), INFRA_CLOUDINIT_KEY,
                               userdata);
    free(userdata);
    return o;
}

static void pvc_name(const struct pipeline *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-valkey-data", p->name);
}

cJSON *build_valkey_pvc(const struct pipeline *p)
{
    struct jb b = {0};
    char name[128];
    pvc_name(p, name, sizeof name);
    cJSON *o = build_object_in(&b, p, KIND_PVC, p->valkey.ns, name, "valkey-primary", "valkey");
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_str(&b, jb_arr(&b, spec, "accessModes"), NULL, "ReadWriteOnce");
    jb_str(&b, spec, "volumeMode", "Filesystem"); /* KubeVirt keeps a disk.img in it */
    jb_str(&b, jb_obj(&b, jb_obj(&b, spec, "resources"), "requests"), "storage", p->valkey.storage);
    return jb_done(&b, o);
}

/* The VM's firmware UUID is cloud-init's instance id: derived from the user data, so that a
 * new configuration is applied (cloud-init runs again) when the VM next starts, and the same
 * configuration keeps the same id (nothing re-runs on a plain restart). */
static int firmware_uuid(const struct pipeline *p, enum valkey_role role, const char *password,
                         char out[37])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char *userdata = cloudinit_render(p, role, password);
    if (!userdata)
        return -1;
    int ok = EVP_Digest(userdata, strlen(userdata), md, &n, EVP_sha256(), NULL);
    free(userdata);
    if (!ok || n < 16)
        return -1;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 (name-based, SHA) */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
             md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
             md[13], md[14], md[15]);
    return 0;
}

static void add_disk(struct jb *b, cJSON *disks, const char *name, const char *serial)
{
    cJSON *d = jb_obj(b, disks, NULL);
    jb_str(b, d, "name", name);
    jb_str(b, jb_obj(b, d, "disk"), "bus", "virtio");
    if (serial)
        jb_str(b, d, "serial", serial);
}

static void domain(struct jb *b, cJSON *dom, const struct pipeline *p, enum valkey_role role,
                   const char *uuid)
{
    jb_int(b, jb_obj(b, dom, "cpu"), "cores", quantity_cpus(p->valkey.cpu));
    jb_str(b, jb_obj(b, dom, "memory"), "guest", p->valkey.memory);
    jb_str(b, jb_obj(b, jb_obj(b, dom, "resources"), "requests"), "cpu", p->valkey.cpu);
    jb_str(b, jb_obj(b, dom, "firmware"), "uuid", uuid);
    cJSON *dev = jb_obj(b, dom, "devices"), *disks = jb_arr(b, dev, "disks");
    add_disk(b, disks, "root", NULL);
    add_disk(b, disks, "cloudinit", NULL);
    if (role == VALKEY_PRIMARY && p->valkey.persistence)
        add_disk(b, disks, "data", INFRA_DATA_DISK_SERIAL);
    cJSON *nic = jb_obj(b, jb_arr(b, dev, "interfaces"), NULL);
    jb_str(b, nic, "name", "default");
    jb_obj(b, nic, "masquerade");
    cJSON *port = jb_obj(b, jb_arr(b, nic, "ports"), NULL);
    jb_str(b, port, "name", "valkey");
    jb_int(b, port, "port", INFRA_VALKEY_PORT);
    jb_str(b, port, "protocol", "TCP");
    jb_obj(b, dev, "rng"); /* entropy at boot (cloud-init seeds the guest's random pool) */
}

void infra_pull_secret_copy_name(const struct pipeline *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-pull", p->name);
}

static void volumes(struct jb *b, cJSON *vols, const struct pipeline *p, enum valkey_role role)
{
    char name[128];
    cJSON *root = jb_obj(b, vols, NULL), *disk;
    jb_str(b, root, "name", "root");
    jb_str(b, disk = jb_obj(b, root, "containerDisk"), "image", p->valkey.image);
    if (*p->pull_secret) { /* KubeVirt reads it in the VM's namespace: our copy there */
        infra_pull_secret_copy_name(p, name, sizeof name);
        jb_str(b, disk, "imagePullSecret", name);
    }
    cJSON *ci = jb_obj(b, vols, NULL);
    jb_str(b, ci, "name", "cloudinit");
    cloudinit_secret_name(p, role, name, sizeof name);
    jb_str(b, jb_obj(b, jb_obj(b, ci, "cloudInitNoCloud"), "secretRef"), "name", name);
    if (role == VALKEY_PRIMARY && p->valkey.persistence) {
        cJSON *data = jb_obj(b, vols, NULL);
        jb_str(b, data, "name", "data");
        pvc_name(p, name, sizeof name);
        jb_str(b, jb_obj(b, data, "persistentVolumeClaim"), "claimName", name);
    }
}

/* Ready once Valkey accepts connections: the pod (and so the Services) follows the probe. */
static void readiness(struct jb *b, cJSON *spec)
{
    cJSON *pr = jb_obj(b, spec, "readinessProbe");
    jb_int(b, jb_obj(b, pr, "tcpSocket"), "port", INFRA_VALKEY_PORT);
    jb_int(b, pr, "initialDelaySeconds", 20);
    jb_int(b, pr, "periodSeconds", 10);
    jb_int(b, pr, "timeoutSeconds", 3);
    jb_int(b, pr, "failureThreshold", 3);
}

cJSON *build_valkey_vm(const struct pipeline *p, enum valkey_role role, int index,
                       const char *password)
{
    struct jb b = {0};
    char name[128], uuid[37];
    if (firmware_uuid(p, role, password, uuid) < 0)
        return NULL;
    infra_vm_name(p, role, index, name, sizeof name);
    cJSON *o = build_object_in(&b, p, KIND_VM, p->valkey.ns, name, component_of(role), "valkey");
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_str(&b, spec, "runStrategy", "Always");
    cJSON *tpl = jb_obj(&b, spec, "template"), *md = jb_obj(&b, tpl, "metadata");
    /* Selector labels only: a worker version bump must not change (restart) the VMs. */
    build_selector_labels(&b, jb_obj(&b, md, "labels"), p, component_of(role), "valkey");
    cJSON *ts = jb_obj(&b, tpl, "spec");
    domain(&b, jb_obj(&b, ts, "domain"), p, role, uuid);
    cJSON *net = jb_obj(&b, jb_arr(&b, ts, "networks"), NULL);
    jb_str(&b, net, "name", "default");
    jb_obj(&b, net, "pod");
    jb_int(&b, ts, "terminationGracePeriodSeconds", 60); /* Valkey flushes its AOF on stop */
    readiness(&b, ts);
    volumes(&b, jb_arr(&b, ts, "volumes"), p, role);
    return jb_done(&b, o);
}

cJSON *build_valkey_service(const struct pipeline *p, enum valkey_role role)
{
    struct jb b = {0};
    char name[128];
    infra_valkey_service_name(p, role, name, sizeof name);
    cJSON *o = build_object_in(&b, p, KIND_SERVICE, p->valkey.ns, name, component_of(role),
                               "valkey");
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_str(&b, spec, "type", "ClusterIP");
    /* Reads go to the replicas; with none, to the primary. */
    enum valkey_role target = role == VALKEY_REPLICA && infra_valkey_replicas(p) == 0
                                  ? VALKEY_PRIMARY
                                  : role;
    build_selector_labels(&b, jb_obj(&b, spec, "selector"), p, component_of(target), "valkey");
    cJSON *port = jb_obj(&b, jb_arr(&b, spec, "ports"), NULL);
    jb_str(&b, port, "name", "valkey");
    jb_int(&b, port, "port", INFRA_VALKEY_PORT);
    jb_int(&b, port, "targetPort", INFRA_VALKEY_PORT);
    jb_str(&b, port, "protocol", "TCP");
    jb_str(&b, port, "appProtocol", "redis");
    return jb_done(&b, o);
}

cJSON *build_valkey_pull_secret(const struct pipeline *p, const cJSON *source)
{
    struct jb b = {0};
    char name[128];
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(source, "type"));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(source, "data");
    infra_pull_secret_copy_name(p, name, sizeof name);
    cJSON *o = build_object_in(&b, p, KIND_SECRET, p->valkey.ns, name, "valkey", NULL);
    jb_str(&b, o, "type", type ? type : "kubernetes.io/dockerconfigjson");
    cJSON *copy = cJSON_IsObject(data) ? cJSON_Duplicate(data, true) : cJSON_CreateObject();
    if (!o || !copy || !cJSON_AddItemToObject(o, "data", copy)) {
        cJSON_Delete(copy);
        b.oom = true;
    }
    return jb_done(&b, o);
}

cJSON *build_data_namespace(const struct pipeline *p)
{
    struct jb b = {0};
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    jb_str(&b, o, "apiVersion", "v1");
    jb_str(&b, o, "kind", "Namespace");
    cJSON *md = jb_obj(&b, o, "metadata");
    jb_str(&b, md, "name", p->valkey.ns);
    cJSON *labels = jb_obj(&b, md, "labels");
    jb_str(&b, labels, "app.kubernetes.io/part-of", "salespipeline");
    jb_str(&b, labels, "app.kubernetes.io/managed-by", OP_MANAGED_BY);
    jb_str(&b, labels, INFRA_WORKERS_NS_LABEL, p->ns);
    /* KubeVirt's level for virt-launcher pods (its PSA integration labels namespaces so). */
    jb_str(&b, labels, "pod-security.kubernetes.io/enforce", INFRA_DATA_NS_LEVEL);
    jb_str(&b, labels, "pod-security.kubernetes.io/enforce-version", "latest");
    return jb_done(&b, o);
}
