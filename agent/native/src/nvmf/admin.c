/*
 * admin.c - admin commands of I/O and discovery controllers: Identify
 * (controller, namespace, active namespace list, namespace id descriptors,
 * I/O command set structures), Get Log Page (error, SMART, firmware slot,
 * changed namespaces, commands supported and effects, ANA, discovery),
 * Set/Get Features, Keep Alive, Async Event Request (held until an event:
 * the namespace's size changed, see nvmf_ns_check), Abort (never aborts) and our vendor snapshot
 * commands (vendor.c). Anything else: Invalid Opcode.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmf/target.h"

#define ST(sc) (NVME_STATUS(NVME_SCT_GENERIC, (sc)) | NVME_STATUS_DNR)
#define ST_CS(sc) (NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, (sc)) | NVME_STATUS_DNR)

/* Reply with `n` bytes of page (copied from offset `off`); data_out clamps to the SGL. */
static void reply_data(struct nvmf_req *q, const void *page, size_t n, uint64_t off)
{
    if (nvmf_req_buf(q) < 0) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR), 0);
        return;
    }
    if (off > n) {
        nvmf_req_complete(q, ST(NVME_SC_INVALID_FIELD), 0);
        return;
    }
    size_t take = n - off < q->len ? n - off : q->len;
    if (q->buf) {
        memset(q->buf, 0, q->len);
        memcpy(q->buf, (const uint8_t *)page + off, take);
    }
    q->data_out = q->len;
    nvmf_req_complete(q, 0, 0);
}

static void serial(const char *nqn, char sn[20])
{
    uint32_t h = 2166136261u;
    for (const char *p = nqn; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    char s[21];
    snprintf(s, sizeof s, "%08x%08x", h, (unsigned)strlen(nqn) * 2654435761u);
    nvmf_pad_ascii(sn, 20, s);
}

static void id_ctrl(struct nvmf_req *q, struct nvmf_ctrlr *k)
{
    struct nvme_id_ctrl *id = calloc(1, sizeof *id);
    if (!id) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR), 0);
        return;
    }
    serial(k->subnqn, id->sn);
    nvmf_pad_ascii(id->mn, sizeof id->mn, k->discovery ? "Mayastor discovery" : "Mayastor NVMe controller");
    nvmf_pad_ascii(id->fr, sizeof id->fr, "1.0");
    id->cntlid = k->cntlid;
    id->ver = NVME_VS(1, 3, 0);
    id->mdts = NVMF_MDTS;
    id->cntrltype = k->discovery ? NVME_CTRL_TYPE_DISCOVERY : NVME_CTRL_TYPE_IO;
    id->acl = 3;
    id->aerl = NVMF_MAX_AER - 1;
    id->lpa = NVME_LPA_EXT_DATA | (k->discovery ? 0 : NVME_LPA_CMD_EFFECTS);
    id->kas = 10; /* 100 ms units: 1 s granularity */
    id->sqes = 0x66;
    id->cqes = 0x44;
    id->maxcmd = NVMF_MAX_QSIZE;
    id->sgls = NVME_SGLS_SUPPORTED | NVME_SGLS_OFFSET | NVME_SGLS_TRANSPORT;
    memcpy(id->subnqn, k->subnqn, sizeof id->subnqn);
    id->ioccsz = (NVME_SQE_SIZE + NVMF_ICD_MAX) / 16;
    id->iorcsz = NVME_CQE_SIZE / 16;
    id->icdoff = 0;
    id->msdbd = 1;
    if (!k->discovery) {
        id->cmic = NVME_CMIC_MULTI_CTRL | NVME_CMIC_ANA;
        id->oaes = NVME_OAES_NS_ATTR | NVME_OAES_ANA_CHANGE;
        id->anatt = 10;
        id->anacap = NVME_ANACAP_OPTIMIZED | NVME_ANACAP_GRPID_NONZERO;
        id->anagrpmax = 1;
        id->nanagrpid = 1;
        id->nn = 1;
        id->mnan = 1;
        id->oncs = NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
        id->vwc = NVME_VWC_PRESENT;
    } else {
        id->oaes = NVME_OAES_DISC_LOG_CHANGE;
    }
    reply_data(q, id, sizeof *id, 0);
    free(id);
}

static void ns_uuid(struct nvmf_ctrlr *k, uint8_t u[16])
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    nvmf_ns_uuid_locked(k->subnqn, k->exp->bdev->name, u);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
}

static void id_ns(struct nvmf_req *q, struct nvmf_ctrlr *k)
{
    struct dp_bdev *b = k->exp->bdev;
    struct nvme_id_ns *ns = calloc(1, sizeof *ns);
    if (!ns) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR), 0);
        return;
    }
    k->ns_size = __atomic_load_n(&b->size, __ATOMIC_ACQUIRE); /* the host learns it now */
    ns->nsze = ns->ncap = ns->nuse = k->ns_size / b->block_size;
    ns->nsfeat = b->thin ? NVME_NSFEAT_THIN : 0;
    ns->nlbaf = 0;
    ns->flbas = 0;
    ns->nmic = NVME_NMIC_SHARED;
    ns->anagrpid = 1;
    ns->lbaf[0].lbads = (uint8_t)__builtin_ctz(b->block_size);
    ns->nsattr = b->read_only ? 1 : 0; /* bit 0: write protected (a snapshot) */
    ns_uuid(k, ns->nguid);
    reply_data(q, ns, sizeof *ns, 0);
    free(ns);
}

static void id_ns_desc(struct nvmf_req *q, struct nvmf_ctrlr *k)
{
    uint8_t page[NVME_ID_DATA_LEN] = { 0 }, u[16];
    ns_uuid(k, u);
    struct nvme_ns_id_desc *d = (struct nvme_ns_id_desc *)page;
    d->nidt = NVME_NIDT_NGUID;
    d->nidl = NVME_NIDT_NGUID_LEN;
    memcpy(page + 4, u, 16);
    d = (struct nvme_ns_id_desc *)(page + 20);
    d->nidt = NVME_NIDT_UUID;
    d->nidl = NVME_NIDT_UUID_LEN;
    memcpy(page + 24, u, 16);
    d = (struct nvme_ns_id_desc *)(page + 40);
    d->nidt = NVME_NIDT_CSI;
    d->nidl = NVME_NIDT_CSI_LEN;
    page[44] = NVME_CSI_NVM;
    reply_data(q, page, sizeof page, 0);
}

static void identify(struct nvmf_req *q, struct nvmf_ctrlr *k)
{
    uint8_t cns = q->sqe.cdw10 & 0xff, csi = (uint8_t)(q->sqe.cdw11 >> 24);
    uint32_t nsid = q->sqe.nsid;
    uint8_t zero[NVME_ID_DATA_LEN] = { 0 };
    if (cns == NVME_ID_CNS_CTRL) {
        id_ctrl(q, k);
        return;
    }
    if (k->discovery) {
        nvmf_req_complete(q, ST(NVME_SC_INVALID_FIELD), 0);
        return;
    }
    switch (cns) {
    case NVME_ID_CNS_NS:
        if (nsid == 1)
            id_ns(q, k);
        else if (nsid == 0 || nsid == 0xffffffffu)
            nvmf_req_complete(q, ST(NVME_SC_INVALID_NAMESPACE_OR_FORMAT), 0);
        else
            reply_data(q, zero, sizeof zero, 0); /* inactive namespace: zeroes */
        return;
    case NVME_ID_CNS_NS_ACTIVE_LIST:
        if (nsid < 1)
            zero[0] = 1; /* the one namespace, nsid 1 */
        reply_data(q, zero, sizeof zero, 0);
        return;
    case NVME_ID_CNS_NS_DESC_LIST:
        if (nsid != 1) {
            nvmf_req_complete(q, ST(NVME_SC_INVALID_NAMESPACE_OR_FORMAT), 0);
            return;
        }
        id_ns_desc(q, k);
        return;
    case NVME_ID_CNS_CS_CTRL:
    case NVME_ID_CNS_CS_NS:
        if (csi != NVME_CSI_NVM) {
            nvmf_req_complete(q, ST(NVME_SC_INVALID_FIELD), 0);
            return;
        }
        reply_data(q, zero, sizeof zero, 0); /* NVM command set: nothing beyond the base */
        return;
    }
    nvmf_req_complete(q, ST(NVME_SC_INVALID_FIELD), 0);
}

/* ---- log pages ----------------------------------------------------------- */

/* The address hosts are told to connect to: the advertised one, or for a
 * wildcard listener the local address this host reached us on. */
static void advertised_addr(int fd, char *out, size_t len)
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    snprintf(out, len, "%s", g_nvmf_advertise);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    if (strcmp(out, "0.0.0.0") && strcmp(out, "::") && *out)
        return;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
    else if (ss.ss_family == AF_INET6) {
        struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)len);
    }
}

static size_t discovery_log(struct nvmf_ctrlr *k, const struct dp_peer *peer, uint8_t **out)
{
    char addr[128];
    advertised_addr(k->admin->fd, addr, sizeof addr);
    pthread_mutex_lock(&g_nvmf_exports.lock);
    size_t n = 0;
    for (struct dp_export *e = g_nvmf_exports.head; e; e = e->next)
        n++;
    size_t len = sizeof(struct nvmf_disc_log_hdr) + n * sizeof(struct nvmf_disc_log_entry);
    uint8_t *p = calloc(1, len);
    if (!p) {
        pthread_mutex_unlock(&g_nvmf_exports.lock);
        return 0;
    }
    struct nvmf_disc_log_hdr *h = (struct nvmf_disc_log_hdr *)p;
    struct nvmf_disc_log_entry *ent = (struct nvmf_disc_log_entry *)(p + sizeof *h);
    char port[16];
    snprintf(port, sizeof port, "%u", nvmf_listen_port());
    uint64_t gen = 0;
    for (struct dp_export *e = g_nvmf_exports.head; e; e = e->next) {
        gen = gen * 31 + strlen(e->name) + 1;
        if (e->dead || !dp_allowlist_allows_nqn(&e->allowed, k->hostnqn, &peer->addr))
            continue;
        struct nvmf_disc_log_entry *d = &ent[h->numrec++];
        d->trtype = NVMF_TRTYPE_TCP;
        d->adrfam = strchr(addr, ':') ? NVMF_ADRFAM_IPV6 : NVMF_ADRFAM_IPV4;
        d->subtype = NVMF_SUBTYPE_NVME;
        d->treq = NVMF_TREQ_SECURE_NOT_SPECIFIED |
                  NVMF_TREQ_DISABLE_SQFLOW; /* as SPDK: libnvme asks for TLS when "not required" */
        d->portid = 1;
        d->cntlid = NVMF_CNTLID_DYNAMIC;
        d->asqsz = NVMF_ADMIN_QSIZE;
        nvmf_pad_ascii(d->trsvcid, sizeof d->trsvcid, port);
        snprintf(d->subnqn, sizeof d->subnqn, "%s", e->name);
        nvmf_pad_ascii(d->traddr, sizeof d->traddr, addr);
        d->tsas.tcp.sectype = NVMF_TCP_SECTYPE_NONE;
    }
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    h->genctr = gen;
    *out = p;
    return sizeof *h + h->numrec * sizeof *ent;
}

static void effects(struct nvme_cmd_effects_log *l)
{
    static const uint8_t adm[] = { NVME_ADM_GET_LOG_PAGE, NVME_ADM_IDENTIFY,           NVME_ADM_ABORT,
                                   NVME_ADM_SET_FEATURES, NVME_ADM_GET_FEATURES,       NVME_ADM_ASYNC_EVENT_REQUEST,
                                   NVME_ADM_KEEP_ALIVE,   NVMF_ADM_VS_SNAPSHOT_CREATE, NVMF_ADM_VS_SNAPSHOT_DESTROY };
    static const uint8_t io[] = { NVME_IO_FLUSH, NVME_IO_WRITE, NVME_IO_READ, NVME_IO_WRITE_ZEROES,
                                  NVME_IO_DATASET_MANAGEMENT };
    for (size_t i = 0; i < sizeof adm; i++)
        l->acs[adm[i]] = NVME_CMD_EFFECTS_CSUPP;
    for (size_t i = 0; i < sizeof io; i++)
        l->iocs[io[i]] = NVME_CMD_EFFECTS_CSUPP | (io[i] == NVME_IO_READ ? 0 : NVME_CMD_EFFECTS_LBCC);
}

static void get_log_page(struct nvmf_req *q, struct nvmf_ctrlr *k)
{
    uint8_t lid = q->sqe.cdw10 & 0xff, lsp = (q->sqe.cdw10 >> 8) & 0x7f;
    uint64_t off = (uint64_t)q->sqe.cdw13 << 32 | q->sqe.cdw12;
    uint8_t page[4096] = { 0 };
    size_t n = 0;
    if (k->discovery != (lid == NVME_LOG_DISCOVERY) && lid != NVME_LOG_ERROR) {
        nvmf_req_complete(q, ST_CS(NVME_SC_INVALID_LOG_PAGE), 0);
        return;
    }
    switch (lid) {
    case NVME_LOG_DISCOVERY: {
        uint8_t *p = NULL;
        n = discovery_log(k, &k->admin->peer, &p);
        if (!p) {
            nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR), 0);
            return;
        }
        reply_data(q, p, n, off);
        free(p);
        return;
    }
    case NVME_LOG_ERROR: n = sizeof(struct nvme_error_log_entry); break;
    case NVME_LOG_SMART:
        ((struct nvme_smart_log *)page)->temperature = 300;
        n = sizeof(struct nvme_smart_log);
        break;
    case NVME_LOG_FW_SLOT: n = 512; break;
    case NVME_LOG_CHANGED_NS:
        if (k->ns_log) { /* our one namespace changed; reading clears it unless RAE (bit 15) */
            uint32_t one = 1;
            memcpy(page, &one, 4);
            k->ns_log = (q->sqe.cdw10 >> 15) & 1;
        }
        n = NVME_CHANGED_NS_LOG_LEN;
        break;
    case NVME_LOG_CMD_EFFECTS:
        effects((struct nvme_cmd_effects_log *)page);
        n = sizeof(struct nvme_cmd_effects_log);
        break;
    case NVME_LOG_ANA: {
        struct nvme_ana_log_hdr *h = (struct nvme_ana_log_hdr *)page;
        struct nvme_ana_group_desc *g = (struct nvme_ana_group_desc *)(page + sizeof *h);
        h->chgcnt = 1;
        h->ngrps = 1;
        g->grpid = 1;
        g->chgcnt = 1;
        g->state = NVME_ANA_OPTIMIZED;
        n = sizeof *h + sizeof *g;
        if (!(lsp & NVME_ANA_LSP_RGO)) {
            g->nnsids = 1;
            uint32_t one = 1;
            memcpy(page + n, &one, 4);
            n += 4;
        }
        break;
    }
    default: nvmf_req_complete(q, ST_CS(NVME_SC_INVALID_LOG_PAGE), 0); return;
    }
    reply_data(q, page, n, off);
}

/* ---- features ------------------------------------------------------------ */

static void features(struct nvmf_req *q, struct nvmf_ctrlr *k, bool set)
{
    uint8_t fid = q->sqe.cdw10 & 0xff;
    uint32_t v = q->sqe.cdw11, out = 0;
    switch (fid) {
    case NVME_FEAT_NUM_QUEUES:
        if (set) {
            if ((v & 0xffff) == 0xffff || (v >> 16) == 0xffff) {
                nvmf_req_complete(q, ST(NVME_SC_INVALID_FIELD), 0);
                return;
            }
            uint32_t want = (v & 0xffff) + 1;
            if (!k->nioq) /* granted once per controller; I/O queues joining read it atomically */
                __atomic_store_n(&k->nioq, (uint16_t)(want < NVMF_MAX_IO_QUEUES ? want : NVMF_MAX_IO_QUEUES),
                                 __ATOMIC_RELAXED);
        }
        out = (uint32_t)(k->nioq ? k->nioq - 1 : NVMF_MAX_IO_QUEUES - 1) * 0x10001u;
        break;
    case NVME_FEAT_ASYNC_EVENT:
        if (set)
            k->aen_cfg = v;
        out = k->aen_cfg;
        break;
    case NVME_FEAT_KATO:
        if (set && k->kato && v) /* a new period applies from the next check; 0 <-> on is fixed at Connect */
            k->kato = v;
        out = k->kato;
        break;
    case NVME_FEAT_VOLATILE_WC: out = 1; break;
    case NVME_FEAT_ARBITRATION:
    case NVME_FEAT_POWER_MGMT:
    case NVME_FEAT_TEMP_THRESH:
    case NVME_FEAT_ERR_RECOVERY:
    case NVME_FEAT_HOST_ID:
        if (set && fid != NVME_FEAT_HOST_ID) {
            nvmf_req_complete(q, ST_CS(NVME_SC_FEATURE_NOT_CHANGEABLE), 0);
            return;
        }
        break;
    default: nvmf_req_complete(q, ST(NVME_SC_INVALID_FIELD), 0); return;
    }
    nvmf_req_complete(q, 0, out);
}

void nvmf_ns_check(struct nvmf_ctrlr *k)
{
    if (k->discovery || k->dead)
        return;
    uint64_t size = __atomic_load_n(&k->exp->bdev->size, __ATOMIC_ACQUIRE);
    if (size != k->ns_size) {
        k->ns_size = size;
        k->ns_event = k->ns_log = true;
    }
    if (!k->ns_event || !k->naer || !(k->aen_cfg & NVME_AEN_CFG_NS_ATTR))
        return;
    k->ns_event = false; /* once per change */
    nvmf_req_complete(k->aer[--k->naer], 0,
                      NVME_AER_CDW0(NVME_AER_TYPE_NOTICE, NVME_AER_NOTICE_NS_CHANGED, NVME_LOG_CHANGED_NS));
}

void nvmf_aer_drop(struct nvmf_ctrlr *k)
{
    int n = k->naer;
    k->naer = 0;
    for (int i = 0; i < n; i++) /* a reset aborts what the controller held */
        nvmf_req_complete(k->aer[i], NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION), 0);
}

void nvmf_admin_cmd(struct nvmf_req *q)
{
    struct nvmf_ctrlr *k = q->c->ctrlr;
    __atomic_store_n(&k->ka_seen, true, __ATOMIC_RELAXED);
    uint8_t opc = q->sqe.opc;
    if (!(k->csts & NVME_CSTS_RDY) && opc != NVME_ADM_KEEP_ALIVE) {
        nvmf_req_complete(q, ST(NVME_SC_COMMAND_SEQUENCE_ERROR), 0);
        return;
    }
    switch (opc) {
    case NVME_ADM_IDENTIFY: identify(q, k); return;
    case NVME_ADM_GET_LOG_PAGE: get_log_page(q, k); return;
    case NVME_ADM_SET_FEATURES:
    case NVME_ADM_GET_FEATURES: features(q, k, opc == NVME_ADM_SET_FEATURES); return;
    case NVME_ADM_KEEP_ALIVE:
        nvmf_req_complete(q, 0, 0);
        nvmf_ns_check(k);
        return;
    case NVME_ADM_ABORT:
        nvmf_req_complete(q, 0, 1); /* bit 0: the command was not aborted */
        return;
    case NVMF_ADM_VS_SNAPSHOT_CREATE:
    case NVMF_ADM_VS_SNAPSHOT_DESTROY: nvmf_vendor_cmd(q); return;
    case NVME_ADM_ASYNC_EVENT_REQUEST:
        if (k->naer >= NVMF_MAX_AER) {
            nvmf_req_complete(q, ST_CS(NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED), 0);
            return;
        }
        q->aer = true;
        k->aer[k->naer++] = q; /* held: completes with an event */
        nvmf_ns_check(k);
        return;
    }
    nvmf_req_complete(q, ST(NVME_SC_INVALID_OPCODE), 0);
}
