/* web_assets.h - the playground page's files, embedded in the binary by
 * cmake/embed_web.cmake from web/ (served at "/" and "/static/..."). */
#ifndef KVS_WEB_ASSETS_H
#define KVS_WEB_ASSETS_H
#include <stddef.h>

typedef struct web_asset {
    const char *path; /* URL path */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];
extern const int web_assets_n;

#endif
