/* cloudinit.c - the cloud-init user data of the Valkey VMs, and the valkey.conf inside it.
 *
 * The guest is our own disk image (scripts/valkey-disk.sh, a containerDisk): Debian with
 * valkey-server and cloud-init preinstalled, Valkey disabled until configured. cloud-init
 * writes three files and runs the setup script, which needs no network: prepare the data disk
 * (primary with persistence: ext4 on the disk whose serial is INFRA_DATA_DISK_SERIAL, mounted
 * on /var/lib/valkey, formatted only when it holds no file system yet), then run the packaged
 * unit with our configuration through a systemd drop-in (the package's own valkey.conf stays
 * untouched). A containerDisk is ephemeral: every VM start boots a fresh copy of the image, so
 * the script runs at every start; every step is safe to repeat. build_valkey.c derives the
 * VM's firmware UUID, which cloud-init uses as its instance id, from this text.
 *
 * The document is a cJSON tree emitted as YAML by yamljson.c; valkey.conf and the script are
 * plain text files of their own formats. */
#include "cloudinit.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infra.h"
#include "quantity.h"
#include "yamljson.h"

#define MAXMEMORY_PERCENT 60 /* of the VM's memory: the OS and AOF rewrites need the rest */
#define MAXMEMORY_MIN (64ull << 20)
#define STAGE_DIR "/etc/salespipeline"
#define SETUP_SCRIPT "/usr/local/sbin/salespipeline-valkey-setup"

/* ---------------------------------------------------------------- text building */

struct text {
    char *buf;
    size_t len;
    FILE *f;
};

static int text_open(struct text *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    return t->f ? 0 : -1;
}

static void say(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(t->f, fmt, ap);
    va_end(ap);
}

/* Closes the stream; the text, or NULL if any write failed. */
static char *text_close(struct text *t)
{
    bool bad = ferror(t->f) != 0;
    if (fclose(t->f) != 0 || bad) {
        free(t->buf);
        return NULL;
    }
    return t->buf;
}

static const char *role_name(enum valkey_role role)
{
    return role == VALKEY_PRIMARY ? "primary" : "replica";
}

static bool has_data_disk(const struct pipeline *p, enum valkey_role role)
{
    return role == VALKEY_PRIMARY && p->valkey.persistence;
}

static unsigned long long maxmemory(const struct pipeline *p)
{
    unsigned long long mem;
    if (quantity_bytes(p->valkey.memory, &mem) < 0)
        mem = 1ull << 30;
    unsigned long long m = mem / 100 * MAXMEMORY_PERCENT;
    return m < MAXMEMORY_MIN ? MAXMEMORY_MIN : m;
}

/* ---------------------------------------------------------------- valkey.conf */

static void conf_persistence(struct text *t, const struct pipeline *p, enum valkey_role role)
{
    if (has_data_disk(p, role)) {
        say(t, "# Persistence: AOF (fsync every second) with an RDB preamble, plus snapshots.\n");
        say(t, "appendonly yes\nappendfsync everysec\nappendfilename \"appendonly.aof\"\n");
        say(t, "aof-use-rdb-preamble yes\nsave 900 1 300 100 60 10000\n");
    } else {
        say(t, "# No persistence here: %s.\n",
            role == VALKEY_PRIMARY ? "spec.valkey.persistence is false"
                                   : "a replica reloads everything from the primary");
        say(t, "appendonly no\nsave \"\"\n");
    }
}

char *cloudinit_valkey_conf(const struct pipeline *p, enum valkey_role role, const char *password)
{
    struct text t;
    char primary[256];
    if (text_open(&t) < 0)
        return NULL;
    infra_valkey_host(p, VALKEY_PRIMARY, primary, sizeof primary);
    say(&t,
        "# Valkey %s of SalesPipeline %s/%s: written by the salespipeline\n"
        "# operator through cloud-init. Edits are lost when it renders the file again.\n",
        role_name(role), p->ns, p->name);
    say(&t, "bind 0.0.0.0\nport %d\nprotected-mode no\ntcp-keepalive 300\ntimeout 0\n",
        INFRA_VALKEY_PORT);
    say(&t, "daemonize no\nlogfile \"\"\nloglevel notice\ndir /var/lib/valkey\n");
    say(&t, "requirepass \"%s\"\nmasterauth \"%s\"\n", password, password);
    /* volatile-ttl refuses writes only once nothing expiring is left. */
    say(&t,
        "# Memory: %d%% of the VM's %s. Only the price series expire (after %ld s,\n"
        "# spec.valkey.ttlSeconds): volatile-ttl can evict those, never a running total.\n",
        MAXMEMORY_PERCENT, p->valkey.memory, p->valkey.ttl_seconds);
    say(&t, "maxmemory %llu\nmaxmemory-policy volatile-ttl\n", maxmemory(p));
    conf_persistence(&t, p, role);
    say(&t, "repl-diskless-sync yes\n");
    if (role == VALKEY_REPLICA)
        say(&t, "replicaof %s %d\nreplica-read-only yes\nreplica-serve-stale-data yes\n", primary,
            INFRA_VALKEY_PORT);
    return text_close(&t);
}

/* ---------------------------------------------------------------- setup script */

static char *setup_script(const struct pipeline *p, enum valkey_role role)
{
    struct text t;
    if (text_open(&t) < 0)
        return NULL;
    say(&t,
        "#!/bin/sh\n"
        "# Runs Valkey with the operator's configuration; no network needed (the image holds\n"
        "# Valkey). cloud-init runs this once per instance: on a containerDisk, at every start\n"
        "# of the VM (a fresh copy of the image). Every step is safe to repeat.\n"
        "set -eu\n"
        "if ! command -v valkey-server >/dev/null; then\n"
        "  echo 'salespipeline: valkey-server is not installed in this image; spec.valkey.image "
        "must be a disk made by scripts/valkey-disk.sh (or hold Valkey 8 and cloud-init)' >&2\n"
        "  exit 1\n"
        "fi\n"
        "systemctl stop valkey-server\n");
    if (has_data_disk(p, role))
        say(&t,
            "disk=/dev/disk/by-id/virtio-%s\n"
            "i=0\nwhile [ ! -b \"$disk\" ] && [ \"$i\" -lt 120 ]; do sleep 1; i=$((i + 1)); done\n"
            "# Format only a disk without a file system: the data survives restarts and new "
            "instance ids.\n"
            "blkid \"$disk\" >/dev/null 2>&1 || mkfs.ext4 -q -L %s \"$disk\"\n"
            "grep -q '^LABEL=%s ' /etc/fstab || "
            "echo 'LABEL=%s /var/lib/valkey ext4 defaults,nofail 0 2' >>/etc/fstab\n"
            "mountpoint -q /var/lib/valkey || mount /var/lib/valkey\n",
            INFRA_DATA_DISK_SERIAL, INFRA_DATA_DISK_SERIAL, INFRA_DATA_DISK_SERIAL,
            INFRA_DATA_DISK_SERIAL);
    say(&t, "chown valkey:valkey /var/lib/valkey\nchmod 0750 /var/lib/valkey\n"
            "install -m 0640 -o root -g valkey " STAGE_DIR
            "/valkey.conf /etc/valkey/salespipeline.conf\n"
            "install -d /etc/systemd/system/valkey-server.service.d\n"
            "install -m 0644 " STAGE_DIR "/valkey-server.override.conf "
            "/etc/systemd/system/valkey-server.service.d/salespipeline.conf\n"
            "systemctl daemon-reload\nsystemctl enable valkey-server\nsystemctl restart "
            "valkey-server\n");
    return text_close(&t);
}

/* The drop-in: the packaged unit (with its hardening) on our file. With a data disk, Valkey
 * never runs without it: on an empty root folder it would start empty, and the replicas would
 * copy that empty data set. */
static char *override_unit(const struct pipeline *p, enum valkey_role role)
{
    struct text t;
    if (text_open(&t) < 0)
        return NULL;
    say(&t, "# The packaged unit, started with the operator's configuration (salespipeline).\n");
    if (has_data_disk(p, role))
        say(&t, "[Unit]\nRequiresMountsFor=/var/lib/valkey\n\n");
    say(&t, "[Service]\nExecStart=\n"
            "ExecStart=/usr/bin/valkey-server /etc/valkey/salespipeline.conf --supervised systemd "
            "--daemonize no\n");
    return text_close(&t);
}

/* ---------------------------------------------------------------- the document */

static void add_file(cJSON *files, const char *path, const char *perms, const char *content,
                     bool *oom)
{
    cJSON *f = cJSON_CreateObject();
    if (!f || !cJSON_AddStringToObject(f, "path", path) ||
        !cJSON_AddStringToObject(f, "owner", "root:root") ||
        !cJSON_AddStringToObject(f, "permissions", perms) ||
        !cJSON_AddStringToObject(f, "content", content) || !cJSON_AddItemToArray(files, f)) {
        cJSON_Delete(f);
        *oom = true;
    }
}

char *cloudinit_render(const struct pipeline *p, enum valkey_role role, const char *password)
{
    bool oom = false;
    char *conf = cloudinit_valkey_conf(p, role, password), *script = setup_script(p, role);
    char *unit = override_unit(p, role), *text = NULL;
    cJSON *doc = cJSON_CreateObject(), *files = cJSON_AddArrayToObject(doc, "write_files");
    cJSON *run = cJSON_AddArrayToObject(doc, "runcmd"), *cmd = cJSON_CreateArray();
    if (!cmd || !run || !cJSON_AddItemToArray(run, cmd)) {
        cJSON_Delete(cmd);
        goto done;
    }
    if (!conf || !script || !unit || !files ||
        !cJSON_AddItemToArray(cmd, cJSON_CreateString(SETUP_SCRIPT)))
        goto done;
    add_file(files, STAGE_DIR "/valkey.conf", "0600", conf, &oom);
    add_file(files, STAGE_DIR "/valkey-server.override.conf", "0644", unit, &oom);
    add_file(files, SETUP_SCRIPT, "0755", script, &oom);
    if (!oom)
        text = yamljson_emit(doc, "#cloud-config\n");
done:
    cJSON_Delete(doc);
    free(conf);
    free(script);
    free(unit);
    return text;
}
