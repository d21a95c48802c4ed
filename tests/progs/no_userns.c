/* no_userns.c: runs a command where no user namespace can be made, as a user without
 * privileges: inside a user namespace of its own whose ids map one to one onto the
 * parent's and whose user.max_user_namespaces is 0, as uid and gid 65534 (nobody) with
 * no capabilities. Run it as root (it writes the id maps from outside). Exits as the
 * command does.
 *
 * usage: no_userns COMMAND [ARGS...]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        perror(path);
        exit(111);
    }
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: no_userns COMMAND [ARGS...]\n");
        return 2;
    }
    /* This process becomes the command (so its pid is the command's); a child, still
     * root outside, writes its id maps once it is in its new user namespace. */
    int ready[2];
    if (pipe(ready)) return 111;
    pid_t self = getpid(), helper = fork();
    if (helper < 0) return 111;
    if (helper == 0) {
        char c, path[64];
        close(ready[1]);
        if (read(ready[0], &c, 1) != 1) _exit(111);
        snprintf(path, sizeof path, "/proc/%d/uid_map", (int)self);
        put(path, "0 0 4294967295\n");
        snprintf(path, sizeof path, "/proc/%d/gid_map", (int)self);
        put(path, "0 0 4294967295\n");
        _exit(0);
    }
    close(ready[0]);
    if (unshare(CLONE_NEWUSER)) {
        perror("unshare");
        return 111;
    }
    int status;
    if (write(ready[1], "r", 1) != 1 || waitpid(helper, &status, 0) != helper || status != 0) return 111;
    close(ready[1]);
    put("/proc/sys/user/max_user_namespaces", "0");
    if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
        perror("dropping to nobody");
        return 111;
    }
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 111;
}
