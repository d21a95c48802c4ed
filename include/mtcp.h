/* mtcp.h: the C interface of the mtcp runtime (libmtcp.so / libmtcp.a). */
#ifndef MTCP_H
#define MTCP_H

#ifdef __cplusplus
extern "C" {
#endif

/* mtcp_checkpoint() results. */
#define MTCP_CHECKPOINTED 1 /* the image was written and this process goes on */
#define MTCP_RESTARTED 2    /* this process was just brought back from an image */

/* Starts the runtime if it is not running yet. The runtime starts by itself from
 * .init_array; only a program with its own _start that does not run .init_array needs
 * to call this. Returns 0, or a negative errno if the configuration is invalid. */
int mtcp_init(void);

/* Checkpoints the whole process now and returns when the image is complete:
 * MTCP_CHECKPOINTED after writing it, MTCP_RESTARTED when the process has been
 * restarted from that image, or a negative errno if the checkpoint failed (the
 * previous image, if any, is left intact). */
int mtcp_checkpoint(void);

/* How many times this computation has been restarted from an image: 0 in its first
 * run, 1 after its first restart, and so on (the count is saved with each image). */
int mtcp_restarts(void);

/* The path of the last image written by this process, or of the image it was
 * restarted from; "" before the first checkpoint. */
const char *mtcp_image_path(void);

#ifdef __cplusplus
}
#endif

#endif /* MTCP_H */
