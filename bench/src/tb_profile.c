/* A qemu TCG plugin (QEMU plugin API version 1) that counts, per translated block, how
 * often it ran; at exit it prints `GRIM-TB VADDR NINSNS EXECS` for every block that ran
 * (a block translated twice appears twice; the reader adds them up by address).
 * Debian's qemu-user ships no plugin header: the few declarations are spelled out. */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb*));
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb);
extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb* tb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb* tb, enum qemu_plugin_op op, void* ptr, uint64_t imm);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void*), void* userdata);
#define GRIM_MAX_TB 262144
static struct { uint64_t vaddr; uint64_t n; uint64_t execs; } grim_tb[GRIM_MAX_TB];
static size_t grim_ntb;
static uint64_t grim_untracked;
static void grim_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  if (grim_ntb < GRIM_MAX_TB) {
    size_t i = grim_ntb++;
    grim_tb[i].vaddr = qemu_plugin_tb_vaddr(tb);
    grim_tb[i].n = n;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &grim_tb[i].execs, 1);
  } else {
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &grim_untracked, n);
  }
}
static void grim_at_exit(qemu_plugin_id_t id, void* p) {
  (void)id; (void)p;
  for (size_t i = 0; i < grim_ntb; ++i)
    if (grim_tb[i].execs)
      fprintf(stderr, "GRIM-TB %llx %llu %llu\n", (unsigned long long)grim_tb[i].vaddr,
              (unsigned long long)grim_tb[i].n, (unsigned long long)grim_tb[i].execs);
  fprintf(stderr, "GRIM-TB-UNTRACKED %llu\n", (unsigned long long)grim_untracked);
}
__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc, char** argv) {
  (void)info; (void)argc; (void)argv;
  qemu_plugin_register_vcpu_tb_trans_cb(id, grim_tb_trans);
  qemu_plugin_register_atexit_cb(id, grim_at_exit, NULL);
  return 0;
}
