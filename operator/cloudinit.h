/* cloudinit.h - the #cloud-config user data of the Valkey VMs and their valkey.conf. */
#ifndef OP_CLOUDINIT_H
#define OP_CLOUDINIT_H

#include "infra.h"
#include "pipeline.h"

/* valkey.conf for the role (a new string, NULL on out-of-memory). */
char *cloudinit_valkey_conf(const struct pipeline *p, enum valkey_role role, const char *password);
/* The whole #cloud-config user data for the role's VMs (a new string). */
char *cloudinit_render(const struct pipeline *p, enum valkey_role role, const char *password);

#endif
