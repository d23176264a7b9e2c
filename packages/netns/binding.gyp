{
  "targets": [
    {
      "target_name": "ambient_netns",
      "sources": [
        "src/native-addon.cc",
        "src/native-sockets.cc",
        "src/native-seqpacket.cc",
        "src/native-watch.cc"
      ],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", { "type": "none", "sources": [] }]]
    }
  ]
}
