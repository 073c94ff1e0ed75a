from __future__ import annotations

from rest_framework import serializers


class ApiIndexOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    authentication = serializers.CharField()
    endpoints = serializers.DictField(child=serializers.URLField())
    documentation = serializers.DictField(child=serializers.URLField())
