/* Runs argv[1..] under the seccomp filter that systemd's MemoryDenyWriteExecute=yes installs
 * (systemd 252, src/shared/seccomp-util.c, seccomp_memory_deny_write_execute): mmap with both
 * PROT_WRITE and PROT_EXEC, mprotect or pkey_mprotect adding PROT_EXEC, and shmat with SHM_EXEC
 * fail with EPERM. The tests use it to run the daemon as the unit would, without systemd.
 * Build: cc -O2 -o mdwe_seccomp mdwe_seccomp.c (Linux, native architecture only). */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
/* The low 32 bits of the third argument (little-endian: x86-64, aarch64). */
#define LOAD_ARG2 BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]))
#define DENY BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int main(int argc, char **argv) {
    struct sock_filter filter[] = {
        /* 0 */ LOAD_NR,
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 4),
        /* 2 */ LOAD_ARG2,
        /* 3 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC),
        /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 0, 1),
        /* 5 */ DENY,
        /* 6 */ LOAD_NR,
        /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 1, 0),
        /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pkey_mprotect, 0, 3),
        /* 9 */ LOAD_ARG2,
        /* 10 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
        /* 11 */ DENY,
        /* 12 */ LOAD_NR,
        /* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_shmat, 0, 3),
        /* 14 */ LOAD_ARG2,
        /* 15 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, SHM_EXEC, 0, 1),
        /* 16 */ DENY,
        /* 17 */ ALLOW,
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program)) {
        perror("seccomp");
        return 97;
    }
    execvp(argv[1], argv + 1);
    perror("execvp");
    return 127;
}
