"""Packaging for kagg. Cloud SDKs and kaggle are extras, imported only on their own code paths."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version = {}
exec((HERE / "kagg" / "__init__.py").read_text(), version)

extras = {
    "aws": ["boto3>=1.34"],
    "gcp": ["google-cloud-functions>=1.16", "google-cloud-run>=0.10", "google-auth>=2.20", "requests>=2.31"],
    "azure": ["azure-identity>=1.15", "azure-mgmt-web>=10", "azure-mgmt-storage>=21", "azure-mgmt-resource>=23",
              "requests>=2.31"],
    "kaggle": ["kaggle>=2.2", "kagglesdk>=0.1.30", "six>=1.16"],
    "plot": ["matplotlib>=3.7"],
    "examples": ["scikit-learn>=1.3", "numpy>=1.24"],
}
extras["all"] = sorted({req for reqs in extras.values() for req in reqs})
extras["test"] = sorted(set(extras["all"]) | {
    "pytest>=8",
    "pytest-timeout>=2.2",
    "pytest-xdist>=3.5",
    "moto[server,awslambda,iam,s3]>=5.0",
    "azure-functions>=1.18",
    "pandas>=2.0",
    "papermill>=2.5",  # script mode is tested side by side with papermill executing the same notebook
    "ipykernel>=6",
})

setup(
    name="kagg",
    version=version["__version__"],
    description="Turn Jupyter notebooks into HTTP functions, deploy them locally or to AWS Lambda, Google Cloud "
                "Functions or Azure Functions, and train them on Kaggle GPUs.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["kagg", "kagg.*"]),
    package_data={"kagg": ["packaging/runtime/*.py", "packaging/shims/*", "py.typed"]},
    include_package_data=True,
    install_requires=[
        "click>=8.1",
        "nbformat>=5.9",
        "tenacity>=8.2",
        "filelock>=3.12",
        "rich>=13",
        "functions-framework>=3.5",
        "hdrhistogram>=0.10",
        "aiohttp>=3.9",
        "watchdog>=3",
        "packaging>=23",
    ],
    extras_require=extras,
    entry_points={
        "console_scripts": ["kagg=kagg.cli:main"],
        "kagg.providers": [
            "local=kagg.providers.local:LocalProvider",
            "aws=kagg.providers.aws:AWSProvider",
            "gcp=kagg.providers.gcp:GCPProvider",
            "azure=kagg.providers.azure:AzureProvider",
        ],
    },
)
