#!/usr/bin/env python3
"""Writes the missing .meta files of the Unity package (stable guids: md5 of the path), for test.sh's layout check.

Run from clients/csharp/: python3 "Tests~/meta.py" .
"""
import hashlib, os, sys
root = sys.argv[1]
def guid(rel): return hashlib.md5(("com.movan.client/" + rel).encode()).hexdigest()
def meta(rel, isdir):
    g = guid(rel)
    if isdir:
        body = "folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
    elif rel.endswith(".cs"):
        body = ("MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n  executionOrder: 0\n"
                "  icon: {instanceID: 0}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n")
    elif rel.endswith(".asmdef"):
        body = "AssemblyDefinitionImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
    elif rel.endswith(".json") or rel.endswith(".md"):
        body = "TextScriptImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
    else:
        body = "DefaultImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
    return "fileFormatVersion: 2\nguid: " + g + "\n" + body
for dirpath, dirs, files in os.walk(root):
    dirs[:] = [d for d in dirs if not d.startswith(".") and not d.endswith("~")]
    for name in dirs + files:
        if name.startswith(".") or name.endswith("~") or name.endswith(".meta"): continue
        full = os.path.join(dirpath, name)
        rel = os.path.relpath(full, root)
        path = full + ".meta"
        if not os.path.exists(path):
            open(path, "w").write(meta(rel, os.path.isdir(full)))
            print("wrote", path)
