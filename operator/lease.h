/* lease.h - leader election on a coordination.k8s.io/v1 Lease, as client-go does it.
 *
 * Every `retry` seconds the thread reads the Lease. It takes it when it is free (no holder),
 * or when its record (holder, resourceVersion) has not changed for leaseDurationSeconds as
 * measured on our own monotonic clock (no trust in other machines' clocks); the write is an
 * update with the read resourceVersion, so of two candidates only one wins. The leader renews
 * every `retry` seconds; if it cannot renew for `renew_deadline` seconds it stops leading (its
 * writes are refused at once: `leading` is the write gate of the reconcile client) and keeps
 * trying, so an API server outage does not kill it. lease_stop() gives the Lease up (empty
 * holder), so that a replacement takes over at once instead of after the lease duration. */
#ifndef OP_LEASE_H
#define OP_LEASE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "kube.h"
#include "metrics.h"

struct lease_config {
    const char *ns, *name, *identity;
    double duration, renew_deadline, retry; /* seconds: 15, 10, 2 */
};

struct lease {
    struct lease_config cfg;
    struct kube_config *kcfg;
    struct sp_metric *leader_gauge, *transitions;
    /* state */
    struct kube_client kc;
    atomic_bool leading;
    atomic_bool stop;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* leadership changed or stop */
    char observed_holder[256], observed_rv[64];
    double observed_at, last_renew;
};

/* Sets up the lock and condition (settings filled in first); lease_destroy() undoes it. */
void lease_init(struct lease *l);
void lease_destroy(struct lease *l);
/* Starts the election thread. Returns 0 or -1 (logged). */
int lease_start(struct lease *l);
/* Blocks until this process leads (true) or *stop is set (false). */
bool lease_wait_leading(struct lease *l, const atomic_bool *stop);
/* Wakes lease_wait_leading() callers (after setting their stop flag). */
void lease_wake(struct lease *l);
/* Stops the thread and, if leading, releases the Lease. */
void lease_stop(struct lease *l);

#endif
