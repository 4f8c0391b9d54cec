{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/mknod.cc",
        "src/xattr.cc",
        "src/mount.cc",
        "src/fsmount.cc",
        "src/resolve.cc",
        "src/inode-flags.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-std=c++17"]
    }
  ]
}
