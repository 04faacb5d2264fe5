/* impl.c - the one translation unit of build/ban that compiles the implementations of the
   single-file libraries it uses: ban.h, and the examples' own headers (and through image.h,
   stb_image; picture.h draws with cairo). Every other file of build/ban includes their
   declarations only. */
#define _POSIX_C_SOURCE 200809L
#define BAN_IMPLEMENTATION
#include "../ban.h"
#define UTIL_IMPLEMENTATION
#include "util.h"
#define NPY_IMPLEMENTATION
#include "npy.h"
#define STORE_IMPLEMENTATION
#include "store.h"
#define TSV_IMPLEMENTATION
#include "tsv.h"
#define NPZ_IMPLEMENTATION
#include "npz.h"
#define QUESTIONS_IMPLEMENTATION
#include "questions.h"
#define MARKUP_IMPLEMENTATION
#include "markup.h"
#define ANNOTATIONS_IMPLEMENTATION
#include "annotations.h"
#define IMAGE_IMPLEMENTATION
#include "image.h"
#define PICTURE_IMPLEMENTATION
#include "picture.h"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop
